# Stand-ins for the parts of mkinitcpio's init_functions that a runtime hook
# may use, with the same behaviour: msg is silenced by "quiet", err prefixes
# "ERROR:", getarg prints the last value of a key from /tmp/cmdline (where
# init stores the command line one key=value per line, flags as key=y).
# shellcheck shell=dash

msg() {
    [ "$(getarg quiet)" != y ] && echo "$@"
}

err() {
    echo "ERROR: $*"
}

getarg() {
    local raw value
    raw="$(grep -s "^$1=" /tmp/cmdline | tail -n 1)"
    if [ -n "$raw" ]; then
        value="${raw#*=}"
        printf '%s' "${value:-$2}"
    else
        printf '%s' "$2"
    fi
}
