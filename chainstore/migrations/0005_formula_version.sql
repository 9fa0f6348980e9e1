-- The version of the epoch rules (protocol::epoch::FORMULA_VERSION) each stored epoch was
-- computed with. Epochs stored before versions were recorded were computed by version 1.
ALTER TABLE epochs ADD COLUMN formula_version INTEGER NOT NULL DEFAULT 1;
