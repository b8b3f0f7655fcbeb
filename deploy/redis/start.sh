#!/bin/sh
# Start redis-server with this directory's redis.conf and users.conf, the embedder
# user's password taken from VOXCACHE_REDIS_PASSWORD (the environment, never a file).
#
# compose.yaml runs this in the redis image; LocalRedis(acl=True) runs it for
# `voxcache up`. Extra arguments are passed to redis-server after redis.conf (the
# local stack uses them for its port, loopback bind, temp dir and log file).
# The users go in on stdin (`redis-server FILE ... -`), so the password (hashed)
# appears in no file and no command line.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
: "${VOXCACHE_REDIS_PASSWORD:?must be set and non-empty: the password of the embedder ACL user (see .env.example)}"
hash=$(printf '%s' "$VOXCACHE_REDIS_PASSWORD" | sha256sum | cut -d' ' -f1)
users=$(
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in
      "user embedder "*) printf '%s #%s\n' "$line" "$hash" ;;
      *) printf '%s\n' "$line" ;;
    esac
  done <"$here/users.conf"
)
exec "${REDIS_SERVER:-redis-server}" "$here/redis.conf" "$@" - <<USERS
$users
USERS
