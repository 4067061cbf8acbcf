#!/usr/bin/env python3
"""`scripts/serve.sh --shell` without a person: boot the VM in serve mode with
the console on a pseudo-terminal, wait for the shell's prompt, run lsscsi in
it, expect the config's disk, exit, and expect a clean teardown and
power-off.  Usage: tests/vm/shell-check.py SERVE_DIR PORT"""
import os
import pty
import select
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    serve_dir, port = sys.argv[1], sys.argv[2]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("bash", ["bash", os.path.join(HERE, "run.sh"), "--suite", "serve",
                           "--serve-dir", serve_dir, "--serve-port", port, "--shell"])
    seen = bytearray()

    def expect(pattern, timeout):
        end = time.time() + timeout
        while time.time() < end:
            if pattern in seen:
                return True
            ready, _, _ = select.select([fd], [], [], 1)
            if ready:
                try:
                    seen.extend(os.read(fd, 4096))
                except OSError:  # the VM is gone
                    break
        return pattern in seen

    failed = []

    def check(name, ok):
        print(f"CHECK {'PASS' if ok else 'FAIL'} serve_shell.{name}", flush=True)
        if not ok:
            failed.append(name)
        return ok

    if check("prompt", expect(b"tcmu-wasm-vm# ", 600)):
        os.write(fd, b"lsscsi; echo DONE$((6*7))\r")
        check("lsscsi", expect(b"DONE42", 60) and b"TCMUWASM" in seen)
        os.write(fd, b"exit\r")
        check("teardown", expect(b"CHECK PASS serve.cleaned_up", 120))
        check("poweroff", expect(b"VM: poweroff", 60))
    else:
        os.kill(pid, 15)
    _, status = os.waitpid(pid, 0)
    check("exit_status", os.waitstatus_to_exitcode(status) == 0)
    if failed:
        sys.stdout.write(seen[-3000:].decode(errors="replace"))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
