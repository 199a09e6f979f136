#!/usr/bin/env bash
# Runs CMD... with a fresh container id appended as the last argument, so every
# hyperfine invocation creates a new container. The same wrapper is used for
# every runtime, so its own cost (one bash start-up and an exec) is identical
# on both sides of a comparison.
# usage: with-id.sh CMD [ARGS...]
exec "$@" "bench-$$-$RANDOM"
