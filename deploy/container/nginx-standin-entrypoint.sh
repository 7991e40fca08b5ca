#!/bin/sh
# The official nginx image's entrypoint contract, for the Debian stand-in: before nginx starts,
# each executable /docker-entrypoint.d/*.envsh is sourced and each executable *.sh is run, in
# name order; 15-local-resolvers.envsh and 20-envsubst-on-templates.sh (templates in
# /etc/nginx/templates/*.template rendered into /etc/nginx/conf.d/ with envsubst, only defined
# environment variables replaced) are built in, as in the official image.
set -eu
if [ "${1:-}" = nginx ]; then
  for script in $(find /docker-entrypoint.d/ -follow -type f -print | sort -V); do
    case "$script" in
      *.envsh) if [ -x "$script" ]; then echo "$0: sourcing $script"; . "$script"; fi ;;
      *.sh) if [ -x "$script" ]; then echo "$0: launching $script"; "$script"; fi ;;
    esac
  done
fi
exec "$@"
