-- PostgreSQL twin of ../0003_video.sql: the timeline's video lane (NULL: no video).

ALTER TABLE timeline ADD COLUMN video_fps_min DOUBLE PRECISION;
ALTER TABLE timeline ADD COLUMN video_frozen BOOLEAN;
