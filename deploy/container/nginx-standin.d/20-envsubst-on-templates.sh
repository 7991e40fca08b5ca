#!/bin/sh
# As the official image: /etc/nginx/templates/*.template -> /etc/nginx/conf.d/*, with envsubst
# replacing only variables defined in the environment (nginx's own $variables stay).
set -eu
[ -d /etc/nginx/templates ] || exit 0
defined_envs=$(printf '${%s} ' $(env | cut -d= -f1))
for template in /etc/nginx/templates/*.template; do
  [ -f "$template" ] || continue
  output="/etc/nginx/conf.d/$(basename "$template" .template)"
  envsubst "$defined_envs" <"$template" >"$output"
  echo "$0: rendered $template to $output"
done
