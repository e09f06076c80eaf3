# SPDX-License-Identifier: Apache-2.0
# How the VM suite runs a command on a node (sourced by test/vm/suite.sh).
#   node_exec NODE 'shell command'   -> prints the command's output, returns its exit code
# Runners, chosen by VM_RUNNER:
#   qemu  VM_XFER_<node>=DIR: the 9p share the guest agent (scripts/vm/guest-init.sh) polls
#   ssh   VM_SSH_CONFIG=FILE: an ssh_config with a Host entry per node (vagrant ssh-config);
#         commands run through sudo as root
# VM_CMD_TIMEOUT (seconds, default 180) bounds each command.

node_exec() {
  local node=$1 cmd=$2 t=${VM_CMD_TIMEOUT:-180}
  case ${VM_RUNNER:?VM_RUNNER must be qemu or ssh} in
    qemu) _node_exec_qemu "$node" "$cmd" "$t" ;;
    ssh) timeout "$t" ssh -F "${VM_SSH_CONFIG:?}" -o BatchMode=yes -o LogLevel=ERROR "$node" \
           "sudo bash -c $(printf %q "$cmd")" </dev/null ;;
    *) echo "unknown VM_RUNNER=$VM_RUNNER" >&2; return 2 ;;
  esac
}

_node_exec_qemu() {
  local node=$1 cmd=$2 t=$3 var dir id rc deadline
  var=VM_XFER_$node; dir=${!var:?no VM_XFER_$node}
  id=$(date +%s%N)-$BASHPID-$RANDOM
  printf '%s\n' "$cmd" > "$dir/.cmd.$id" && mv "$dir/.cmd.$id" "$dir/cmd.$id.sh"
  deadline=$(( $(date +%s) + t ))
  until [[ -e $dir/rc.$id ]]; do
    if (( $(date +%s) > deadline )); then
      echo "timeout after ${t}s on $node: $cmd" >&2; rm -f "$dir/cmd.$id.sh"; return 124
    fi
    sleep 0.05
  done
  cat "$dir/out.$id" 2>/dev/null
  rc=$(cat "$dir/rc.$id")
  rm -f "$dir/out.$id" "$dir/rc.$id"
  return "$rc"
}

