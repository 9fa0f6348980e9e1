#!/usr/bin/env bash
# Creates .deps/openai-venv with the official OpenAI Python client pinned, with all its
# dependencies, by gateway/requirements-openai.txt. devnet/tests/gateway_e2e.rs runs
# gateway/tests/openai_client.py with it. Quick no-op when the venv already matches.
exec "$(dirname "$0")/setup-venv.sh" .deps/openai-venv gateway/requirements-openai.txt python openai
