-- Nexmark q2: selection of a few auctions.
CREATE SINK q2 AS
SELECT auction, price FROM bid WHERE auction % 123 = 0
WITH (connector = 'blackhole');
