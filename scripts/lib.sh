# Helpers shared by the scripts: `source "$(dirname "$0")/lib.sh"`.

log() { printf '[%s] %s\n' "${LOG_TAG:-scripts}" "$*" >&2; }

# Whether something accepts TCP connections on 127.0.0.1:<port>.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 100); do port_open "$1" && return 0; sleep 0.1; done
  log "nothing answers on port $1"; return 1
}

# The one thing that needs root: installing Debian packages (and, on a fresh machine, the files
# apt writes under /etc). Uses sudo when not root, and says so first.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else log "needs root: sudo $*"; sudo "$@"; fi
}

apt_install() {
  log "installing $* with apt-get (needs root)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Options::=--force-confold "$@" >/dev/null
}

# The function an event of events/ is for, from the file's name (scripts/e2e.sh and invoke.sh).
event_function() {
  case "$(basename "$1")" in
    dashboard-bundle*|health*) echo dashboard-bundle ;;
    clear-cache*) echo clear-cache ;;
    warm-cache*) echo warm-cache ;;
    *) return 1 ;;
  esac
}

# A function's SAM resource: dashboard-bundle -> DashboardBundleFunction.
logical_id() {
  local id="" part
  IFS=- read -ra parts <<<"$1"
  for part in "${parts[@]}"; do id+="${part^}"; done
  echo "${id}Function"
}

# fill_event <event file> <output file> <admin token> <superadmin token>: the event with its token
# placeholders (DEV_TOKEN_TENANT_ADMIN, DEV_TOKEN_SUPERADMIN) replaced.
fill_event() {
  sed -e "s/DEV_TOKEN_TENANT_ADMIN/$3/" -e "s/DEV_TOKEN_SUPERADMIN/$4/" "$1" >"$2"
}
