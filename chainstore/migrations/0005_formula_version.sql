-- The version of the epoch rules (protocol::epoch::FORMULA_VERSION) each stored epoch was
-- computed with. Epochs stored before versions were recorded were computed by version 1.
ALTER TABLE epochs ADD COLUMN formula_version INTEGER NOT NULL DEFAULT 1;

-- Each worker's decayed audit record after the epoch (protocol::epoch::AuditRecord, ppm of a
-- judgement), carried into the next epoch's accuracy. Version 1 rows have none (0, 0).
ALTER TABLE epoch_nodes ADD COLUMN record_audited_ppm INTEGER NOT NULL DEFAULT 0;
ALTER TABLE epoch_nodes ADD COLUMN record_quality_ppm INTEGER NOT NULL DEFAULT 0;
