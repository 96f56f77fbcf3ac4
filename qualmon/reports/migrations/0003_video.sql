-- The video lane of the quality timeline: per role and 5 s bucket, the lowest frame rate
-- sampled (complete frames in the last second) and whether a W3C freeze happened in it.
-- NULL in both: no video in that bucket (an audio-only leg, or a report written before).

ALTER TABLE timeline ADD COLUMN video_fps_min REAL;
ALTER TABLE timeline ADD COLUMN video_frozen INTEGER;
