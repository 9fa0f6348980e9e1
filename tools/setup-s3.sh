#!/usr/bin/env bash
# Creates .deps/s3-venv with moto[server] (a local S3-compatible server) pinned, with all its
# dependencies, by blobstore/requirements-s3.txt. blobstore/tests/s3.rs starts moto_server from it.
# Quick no-op when the venv already matches the requirements.
exec "$(dirname "$0")/setup-venv.sh" .deps/s3-venv blobstore/requirements-s3.txt moto_server moto
