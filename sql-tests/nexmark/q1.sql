-- Nexmark q1: currency conversion (dollars to euros).
CREATE SINK q1 AS
SELECT auction, bidder, price * 0.908 AS price, date_time, extra FROM bid
WITH (connector = 'blackhole');
