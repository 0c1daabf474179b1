# submitPolicy ExactlyOnce: the command ARM runs is `bash .aks-runcommand/fence.sh`, shipped in
# the context next to the user's files with fence.conf (which fence, until when) and command.sh
# (the user's command, as a file: never spliced into shell text). Every submission of one run
# names the same fence, an object in namespace aks-command. Creating it is atomic: the first
# submission to create it runs the command and records its exit code and output there; any
# later one finds it and replays that result. See docs/exactly-once.md.
#
# When the command did not run here, the last line says why, for the operator:
#   aks-runcommand-fence: FenceUnavailable: ...    exit 211  (cannot claim: nothing ran)
#   aks-runcommand-fence: FenceResultMissing: ...  exit 212  (claimed earlier, no result came)
#   aks-runcommand-fence: DeadlinePassed: ...      exit 213  (too late to claim: nothing ran)
set -u

here=$(dirname "${BASH_SOURCE[0]}")
namespace=aks-command
output_limit=524288 # ARM keeps at most 512 KiB of a command's output
poll_seconds=2
[[ -w ${HOME:-/nonexistent} ]] || export HOME=/tmp # the command pod's HOME is not writable

say() { # say REASON EXIT DETAIL...: the operator's line, then exit
  local reason=$1 code=$2
  shift 2
  local detail="$*"
  printf 'aks-runcommand-fence: %s: %s\n' "$reason" "${detail//$'\n'/ }"
  exit "$code"
}

kind='' name='' run_until='' wait_until='' expires=''
while IFS='=' read -r key value; do
  case $key in
    kind) kind=$value ;;
    name) name=$value ;;
    runUntil) run_until=$value ;;
    waitUntil) wait_until=$value ;;
    expires) expires=$value ;;
  esac
done <"$here/fence.conf"
case $kind in
  ConfigMap) create=(configmap) resource=configmaps decode='' ;;
  Secret) create=(secret generic) resource=secrets decode='base64decode ' ;;
  *) say FenceUnavailable 211 "fence.conf names no fence kind" ;;
esac
[[ $name =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ && $run_until =~ ^[0-9]+$ &&
  $wait_until =~ ^[0-9]+$ && $expires =~ ^[0-9]+$ ]] ||
  say FenceUnavailable 211 "fence.conf is incomplete"
work=$(mktemp -d "${TMPDIR:-/tmp}/fence.XXXXXX") || say FenceUnavailable 211 "no temporary directory"
trap 'rm -rf "$work"' EXIT
labels=(aks.gitops.dev/fence=true "aks.gitops.dev/fence-expires=$expires")

write_fence() { # write_fence create|replace DATA-FLAG...: kubectl's error, if any, in $work/error
  local verb=$1
  shift
  kubectl create "${create[@]}" "$name" -n "$namespace" --dry-run=client -o json "$@" |
    kubectl label --local -f - -o json "${labels[@]}" |
    kubectl "$verb" -f - >/dev/null 2>"$work/error"
}

run_and_record() { # the fence is ours: run the command, record its result, exit with its code
  local seconds=$((run_until - $(date +%s)))
  ((seconds > 0)) || seconds=1
  timeout -k 10 "$seconds" bash "$here/command.sh" </dev/null 2>&1 | tee "$work/output"
  local code=${PIPESTATUS[0]}
  head -c "$output_limit" "$work/output" >"$work/kept"
  if ! write_fence replace --from-literal=state=done --from-literal="exitCode=$code" \
    --from-literal="holder=$holder" --from-file=output="$work/kept"; then
    printf 'aks-runcommand-fence: the result could not be recorded in %s %s/%s: %s\n' \
      "$kind" "$namespace" "$name" "$(tr '\n' ' ' <"$work/error")" >&2
  fi
  clean_expired
  exit "$code"
}

clean_expired() { # delete fences of this kind whose TTL has passed; best effort (list, delete)
  local now fence expiry expired=()
  now=$(date +%s)
  while read -r fence expiry; do
    [[ $expiry =~ ^[0-9]+$ ]] && ((expiry < now)) && expired+=("$fence")
  done < <(kubectl get "$resource" -n "$namespace" -l aks.gitops.dev/fence=true -o \
    'go-template={{range .items}}{{.metadata.name}} {{index .metadata.labels "aks.gitops.dev/fence-expires"}}{{"\n"}}{{end}}' \
    2>/dev/null)
  ((${#expired[@]} == 0)) ||
    kubectl delete "$resource" -n "$namespace" --ignore-not-found "${expired[@]}" >/dev/null 2>&1
}

replay_or_wait() { # another submission holds the fence: replay its result once it is there
  local claimed=$1 state code
  local result="{{with .data}}{{with .state}}{{$decode.}}{{end}} {{with .exitCode}}{{$decode.}}{{end}}"
  result+='{{"\n"}}{{with .output}}'"{{$decode.}}"'{{end}}{{end}}'
  [[ $kind == ConfigMap ]] && result+='{{with .binaryData}}{{with .output}}{{base64decode .}}{{end}}{{end}}'
  while :; do
    if kubectl get "$resource" "$name" -n "$namespace" -o "go-template=$result" \
      >"$work/fence" 2>"$work/error"; then
      read -r state code <"$work/fence"
      if [[ $state == "done" && $code =~ ^[0-9]+$ ]]; then
        tail -n +2 "$work/fence"
        exit "$code"
      fi
    elif grep -q '(Forbidden)' "$work/error"; then
      say FenceUnavailable 211 "cannot read the fence:" "$(<"$work/error")"
    elif grep -q '(NotFound)' "$work/error"; then
      [[ $claimed == yes ]] ||
        say DeadlinePassed 213 "this submission started after its run's deadline; nothing ran"
      say FenceResultMissing 212 "$kind $namespace/$name was deleted before it held a result"
    fi
    if (($(date +%s) >= wait_until)); then
      say FenceResultMissing 212 "$kind $namespace/$name was claimed by an earlier submission" \
        "of this run, which recorded no result before the run's deadline (its command pod" \
        "may have been evicted or stopped); the command may have run in part or not at all"
    fi
    sleep "$poll_seconds"
  done
}

holder="${HOSTNAME:-command}-$$"
if (($(date +%s) < run_until)); then
  if write_fence create --from-literal=state=running --from-literal="holder=$holder"; then
    # Recording the result needs update: prove it before anything runs.
    if ! write_fence replace --from-literal=state=running --from-literal="holder=$holder"; then
      kubectl delete "$resource" "$name" -n "$namespace" --ignore-not-found >/dev/null 2>&1
      say FenceUnavailable 211 "claimed the fence but cannot update it:" "$(<"$work/error")"
    fi
    run_and_record
  elif ! grep -q '(AlreadyExists)' "$work/error"; then
    say FenceUnavailable 211 "$(<"$work/error")"
  fi
  replay_or_wait yes
fi
replay_or_wait no
