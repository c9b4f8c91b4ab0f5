#!/bin/sh
# What a user runs without orch: build to a staging tag, inspect it, point the tag at it.
# bench/build_overhead.py times orch against this.  Usage: publish-script.sh REPO TAG BUILDX-ARGS...
set -e
REPO=$1
TAG=$2
shift 2
docker buildx build --progress quiet --output "type=registry,name=$REPO:staging" "$@" >/dev/null
docker buildx imagetools inspect "$REPO:staging" --format '{{json .}}' >/dev/null
docker buildx imagetools create -t "$REPO:$TAG" "$REPO:staging" >/dev/null 2>&1
