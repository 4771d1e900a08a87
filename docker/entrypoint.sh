#!/bin/sh
# The robust image's entrypoint.
#   robust-entrypoint                       -> mlflow run . -e main --env-manager local
#   robust-entrypoint -P epochs=3           -> the same with those parameters
#   robust-entrypoint train -P epochs=3     -> mlflow run . -e train --env-manager local -P ...
#   robust-entrypoint mlflow server ...     -> runs the command as given (anything that is not
#                                              an entry point of ./MLproject)
set -e
if [ "$#" -eq 0 ]; then
    set -- main
fi
case "$1" in
    -*) set -- main "$@" ;;
esac
if grep -q "^  $1:\$" MLproject 2>/dev/null; then
    entry="$1"
    shift
    exec mlflow run . -e "$entry" --env-manager local "$@"
fi
exec "$@"
