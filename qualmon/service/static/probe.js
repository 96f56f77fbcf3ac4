/*
 * qualmon probe: tells a qualmon service what this participant actually hears.
 *
 *   var probe = QualmonProbe.attach(pc, {url: "https://qualmon.example", token: PUBLISH_TOKEN});
 *   ...
 *   probe.detach();
 *
 * Every intervalMs (default 2000, at least 1000) it reads pc.getStats(), keeps the inbound
 * audio counters, the inbound video freezes, frame rate and size, the remote-inbound RTT/loss
 * and the selected candidate pair's RTT, and POSTs
 * them (cumulative: the service computes the deltas) to <url>/v1/sessions/<session>/stats.
 * The session comes from options.session or from the token's payload. Failed posts back off
 * (doubling, up to 60 s); a 401/403 or a closed connection stops the probe. Nothing here ever
 * throws into the host page: every error is swallowed. No dependencies.
 */
(function (root) {
  "use strict";

  var INBOUND_FIELDS = [
    "packetsReceived", "packetsLost", "jitter", "concealedSamples", "silentConcealedSamples",
    "concealmentEvents", "totalSamplesReceived", "jitterBufferDelay",
    "jitterBufferEmittedCount", "audioLevel"
  ];
  var VIDEO_FIELDS = [
    "freezeCount", "totalFreezesDuration", "framesPerSecond", "frameWidth", "frameHeight"
  ];
  var REMOTE_FIELDS = ["roundTripTime", "fractionLost"];
  var DEFAULT_INTERVAL_MS = 2000;
  var MIN_INTERVAL_MS = 1000;
  var MAX_BACKOFF_MS = 60000;
  var REQUEST_TIMEOUT_MS = 10000;
  var MAX_INBOUND = 8;
  var MAX_ID_CHARS = 128;

  function isNumber(value) {
    return typeof value === "number" && isFinite(value);
  }

  function sessionFromToken(token) {
    try {
      var part = String(token).split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      while (part.length % 4) part += "=";
      var claims = JSON.parse(atob(part));
      return typeof claims.session === "string" ? claims.session : null;
    } catch (e) {
      return null;
    }
  }

  function pick(from, into, names) {
    for (var i = 0; i < names.length; i++) {
      if (isNumber(from[names[i]])) into[names[i]] = from[names[i]];
    }
    return into;
  }

  // The W3C shape the service expects, or null while nothing is received yet.
  function buildSample(report, timestamp) {
    var inbound = [];
    var video = [];
    var remote = [];
    var pairs = {};
    var selectedPairId = null;
    report.forEach(function (s) {
      var kind = s.kind || s.mediaType;
      var id = String(s.id).slice(0, MAX_ID_CHARS);
      if (s.type === "inbound-rtp" && kind === "audio" && isNumber(s.packetsReceived)) {
        inbound.push(pick(s, {type: "inbound-rtp", kind: "audio", id: id}, INBOUND_FIELDS));
      } else if (s.type === "inbound-rtp" && kind === "video") {
        video.push(pick(s, {type: "inbound-rtp", kind: "video", id: id}, VIDEO_FIELDS));
      } else if (s.type === "remote-inbound-rtp" && kind === "audio") {
        remote.push(pick(s, {type: "remote-inbound-rtp", kind: "audio", id: id}, REMOTE_FIELDS));
      } else if (s.type === "candidate-pair") {
        pairs[s.id] = s;
      } else if (s.type === "transport" && s.selectedCandidatePairId) {
        selectedPairId = s.selectedCandidatePairId;
      }
    });
    if (!inbound.length) return null;
    var stats = inbound.slice(0, MAX_INBOUND)
      .concat(video.slice(0, MAX_INBOUND), remote.slice(0, 4));
    var pair = selectedPairId ? pairs[selectedPairId] : null;
    if (!pair) {
      for (var key in pairs) {
        if (pairs[key].nominated && pairs[key].state === "succeeded") {
          pair = pairs[key];
          break;
        }
      }
    }
    if (pair) {
      stats.push(pick(pair, {
        type: "candidate-pair", id: String(pair.id).slice(0, MAX_ID_CHARS), nominated: true
      }, ["currentRoundTripTime"]));
    }
    return {timestamp: timestamp, stats: stats};
  }

  function Probe(pc, options) {
    var self = this;
    var base = String(options.url || "").replace(/\/+$/, "");
    var session = options.session || sessionFromToken(options.token);
    this._pc = pc;
    this._token = String(options.token || "");
    this._endpoint = base + "/v1/sessions/" + encodeURIComponent(session || "") + "/stats";
    this._intervalMs = Math.max(MIN_INTERVAL_MS, Number(options.intervalMs) || DEFAULT_INTERVAL_MS);
    this._backoffMs = 0;
    this._timer = null;
    this._stopped = !session || typeof fetch !== "function" || !pc || !pc.getStats;
    this._lastTimestamp = 0;
    /* For debugging from the console: counts and the last HTTP status. */
    this.status = {sent: 0, failed: 0, lastStatus: null, stopped: this._stopped};
    this._onState = function () {
      try {
        if (self._closed()) self.detach();
      } catch (e) { /* never into the host page */ }
    };
    if (this._stopped) return;
    try {
      pc.addEventListener("connectionstatechange", this._onState);
    } catch (e) { /* older browsers: the poll notices the close */ }
    this._schedule(this._intervalMs);
  }

  Probe.prototype._closed = function () {
    var pc = this._pc;
    return pc.connectionState === "closed" || pc.signalingState === "closed";
  };

  Probe.prototype._schedule = function (delayMs) {
    var self = this;
    if (this._stopped) return;
    this._timer = setTimeout(function () {
      self._timer = null;
      try {
        self._tick();
      } catch (e) {
        self._failed(null);
      }
    }, delayMs);
  };

  Probe.prototype._tick = function () {
    var self = this;
    if (this._stopped) return;
    if (this._closed()) {
      this.detach();
      return;
    }
    Promise.resolve(this._pc.getStats()).then(function (report) {
      if (self._stopped) return null;
      var now = Date.now();
      if (now <= self._lastTimestamp) now = self._lastTimestamp + 1;
      var sample = buildSample(report, now);
      if (!sample) {
        self._schedule(self._intervalMs);
        return null;
      }
      self._lastTimestamp = now;
      return self._send(sample);
    }).catch(function () {
      self._failed(null);
    });
  };

  Probe.prototype._send = function (sample) {
    var self = this;
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timeout = controller ? setTimeout(function () {
      try { controller.abort(); } catch (e) { /* ignore */ }
    }, REQUEST_TIMEOUT_MS) : null;
    return fetch(this._endpoint, {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      cache: "no-store",
      headers: {"Authorization": "Bearer " + this._token, "Content-Type": "application/json"},
      body: JSON.stringify(sample),
      signal: controller ? controller.signal : undefined
    }).then(function (response) {
      if (timeout) clearTimeout(timeout);
      self.status.lastStatus = response.status;
      if (response.ok) {
        self.status.sent += 1;
        self._backoffMs = 0;
        self._schedule(self._intervalMs);
      } else if (response.status === 401 || response.status === 403) {
        self.status.failed += 1;
        self.detach();  // the token will not get better by retrying
      } else if (response.status === 429) {
        var seconds = Number(response.headers.get("Retry-After")) || 1;
        self._schedule(Math.max(self._intervalMs, seconds * 1000));
      } else if (response.status >= 400 && response.status < 500) {
        self.status.failed += 1;  // this sample was refused; the next one is cumulative anyway
        self._schedule(self._intervalMs);
      } else {
        self._failed(response.status);
      }
    }, function () {
      if (timeout) clearTimeout(timeout);
      self._failed(null);
    });
  };

  Probe.prototype._failed = function (status) {
    this.status.failed += 1;
    if (status !== null) this.status.lastStatus = status;
    this._backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(this._intervalMs, this._backoffMs * 2));
    this._schedule(this._backoffMs * (1 + 0.2 * Math.random()));
  };

  /* Stop polling and sending; safe to call more than once. */
  Probe.prototype.detach = function () {
    this._stopped = true;
    this.status.stopped = true;
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
    try {
      this._pc.removeEventListener("connectionstatechange", this._onState);
    } catch (e) { /* ignore */ }
  };

  function attach(pc, options) {
    try {
      return new Probe(pc, options || {});
    } catch (e) {
      return {detach: function () {}, status: {sent: 0, failed: 0, lastStatus: null, stopped: true}};
    }
  }

  root.QualmonProbe = {attach: attach, version: "1"};
})(typeof window !== "undefined" ? window : this);
