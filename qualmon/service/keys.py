"""Every typed application key of the service, in one place below the route modules.

Route modules import their keys from here, and `app.py` imports the route modules: with
the keys one layer down, nothing has to import `app.py` back.
"""

from __future__ import annotations

from aiohttp import web

from ..cluster.membership import Membership
from ..cluster.owners import SessionOwners
from ..config import Settings
from ..l10n.catalogs import Catalogs
from ..media.rtp_ports import PortPool
from ..reports.async_store import AsyncReportStore
from ..reports.recorder import ReportRecorder
from ..reports.warning_log import WarningTimeline
from ..sessions.registry import SessionRegistry
from ..warnings.runtime import WarningsRuntime
from .drain_state import DrainState
from .janus_bridge import JanusBridge
from .metrics import ProbeMetrics, QualmonMetrics, RtpIngestMetrics
from .rate_limit import RateLimiter
from .relay_client import RelayClient
from .therapist_locales import TherapistLocales
from .webhook import WebhookSender

settings_key = web.AppKey("settings", Settings)
sessions_key = web.AppKey("sessions", SessionRegistry)
metrics_key = web.AppKey("metrics", QualmonMetrics)
warnings_key = web.AppKey("warnings", WarningsRuntime)
store_key = web.AppKey("report_store", AsyncReportStore)
recorder_key = web.AppKey("report_recorder", ReportRecorder)
timeline_key = web.AppKey("warning_timeline", WarningTimeline)
webhook_key = web.AppKey("webhook", WebhookSender)
limiter_key = web.AppKey("probe_rate_limiter", RateLimiter)
probe_metrics_key = web.AppKey("probe_metrics", ProbeMetrics)
rtp_ports_key = web.AppKey("rtp_ports", PortPool)
rtp_metrics_key = web.AppKey("rtp_metrics", RtpIngestMetrics)
drain_key = web.AppKey("drain", DrainState)
janus_key = web.AppKey("janus", JanusBridge)
"Only when QUALMON_JANUS_URL is set."
instance_id_key = web.AppKey("instance_id", str)
"This instance's id in the cluster (QUALMON_INSTANCE_ID or host-pid), resolved once; the"
" `Qualmon-Instance` header of every answer."
membership_key = web.AppKey("membership", Membership)
owners_key = web.AppKey("owners", SessionOwners)
"Who owns a session (the membership; the relay asks it). Absent: everything is local."
relay_key = web.AppKey("relay", RelayClient)
catalogs_key = web.AppKey("catalogs", Catalogs)
"Every locale's compiled catalog, loaded when the app is made (a missing one stops the start)."
therapist_locales_key = web.AppKey("therapist_locales", TherapistLocales)
"Each session's therapist's locale (publish token claim), for the webhook."
