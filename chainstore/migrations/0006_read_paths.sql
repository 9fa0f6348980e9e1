-- DeepNode indexer schema v6: what the REST API's hot routes read without scanning.

-- Each worker's task events counted (derived, like `task_events` itself: kept by
-- `ingest::TaskRun` as the rows go in, emptied and rebuilt by the replay after a rollback).
-- `GET /nodes/{address}` grouped every task event of the worker per request (about 2,000 rows,
-- 1.4 ms, for a worker of the bench's 500 tasks; `GET /nodes` every event of every worker).
-- `failed`: commits with a non-zero failure code.
CREATE TABLE node_task_counts (
    worker    TEXT PRIMARY KEY NOT NULL,
    assigned  INTEGER NOT NULL DEFAULT 0,
    committed INTEGER NOT NULL DEFAULT 0,
    failed    INTEGER NOT NULL DEFAULT 0,
    missed    INTEGER NOT NULL DEFAULT 0,
    finalized INTEGER NOT NULL DEFAULT 0
);
INSERT INTO node_task_counts (worker, assigned, committed, failed, missed, finalized)
SELECT worker,
    SUM(kind = 'assigned'),
    SUM(kind = 'committed'),
    COALESCE(SUM(kind = 'committed' AND json_extract(detail, '$.code') != 0), 0),
    SUM(kind = 'missed'),
    SUM(kind = 'finalized')
FROM task_events
WHERE worker IS NOT NULL AND kind IN ('assigned', 'committed', 'missed', 'finalized')
GROUP BY worker;

-- The newest indexed block's time (whether a jail still runs), read by every node route.
CREATE INDEX blocks_by_timestamp ON blocks (timestamp);
