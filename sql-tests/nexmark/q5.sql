-- Nexmark q5 (aggregate part): bids per auction in 10 s windows sliding every 2 s.
CREATE SINK q5 AS
SELECT auction, window_start, window_end, count(*) AS num
FROM HOP(bid, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND)
GROUP BY auction, window_start, window_end
EMIT ON WINDOW CLOSE
WITH (connector = 'blackhole');
