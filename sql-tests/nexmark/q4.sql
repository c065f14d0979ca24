-- Nexmark q4, average winning price per category: a join with a time condition, the
-- maximum bid per auction, then the average per category (an updating result).
CREATE SINK q4 AS
SELECT Q.category, AVG(Q.final) AS avg_final
FROM (
  SELECT MAX(B.price) AS final, A.category
  FROM auction A, bid B
  WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires
  GROUP BY A.id, A.category
) Q
GROUP BY Q.category
WITH (connector = 'blackhole');
