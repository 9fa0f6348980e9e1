#!/usr/bin/env bash
# Creates .deps/schemathesis-venv with Schemathesis pinned, with all its dependencies, by
# indexer/requirements-fuzz.txt. indexer/tests/fuzz.rs runs its `st` against the REST API.
# Quick no-op when the venv already matches.
exec "$(dirname "$0")/setup-venv.sh" .deps/schemathesis-venv indexer/requirements-fuzz.txt st schemathesis
