"""Runs the Tests/reference scripts for the Swift tests, each in a fork of this one interpreter.

A test run starts about 400 Python processes, and each spent 0.15-0.3 CPU seconds importing numpy,
safetensors and gguf before doing its own work. This server imports them once; every request
forks a child that runs one script as `python script args...` would (sys.argv, __main__, the
script's directory first on sys.path, stdin on /dev/null, stdout and stderr into the given files,
the exit status of SystemExit or 1 after a traceback), so the scripts stay ordinary programs.

Protocol, one Unix-socket connection per script: the client sends one JSON line
{"script", "args", "cwd", "env", "stdout", "stderr"}; the server answers {"pid": N}, then
{"status": S, "cpu": seconds} when the script has exited (S: the exit code, or the number of the
signal that killed it). A line "signal N" from the client sends signal N to the script while it
runs. The server exits when the process that started it does.

With --llama (started with LD_PRELOAD naming the libstdc++ shim that llama_cpp_check.py needs), the
server also loads llama.cpp's CPU library (llama_cpp_check) before forking; its scripts share it.
"""

import atexit
import json
import os
import runpy
import signal
import socket
import sys
import threading
import traceback

import gguf  # noqa: F401
import ml_dtypes  # noqa: F401
import numpy  # noqa: F401
import safetensors.numpy  # noqa: F401


def run_script(request):
    """In the forked child: become `python script args...` and exit with its status."""
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, fd)
        os.close(out)
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    script = request["script"]
    sys.argv = [script] + request["args"]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code & 0xFF)


def serve_one(conn):
    """In a forked monitor: fork the script, pass on signals, report its status and CPU time."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    reader = conn.makefile("rb")
    request = json.loads(reader.readline())
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        reader.close()
        conn.close()
        run_script(request)
    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    lock = threading.Lock()
    reaped = []

    def forward_signals():
        for line in reader:
            words = line.split()
            if len(words) == 2 and words[0] == b"signal":
                with lock:
                    if not reaped:
                        os.kill(pid, int(words[1]))

    threading.Thread(target=forward_signals, daemon=True).start()
    while True:
        try:
            _, status, usage = os.wait4(pid, 0)
            break
        except InterruptedError:
            continue
    with lock:
        reaped.append(True)
    code = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    conn.sendall(json.dumps({"status": code if code >= 0 else -code, "cpu": cpu}).encode() + b"\n")
    os._exit(0)


def main():
    path = sys.argv[1]
    if "--llama" in sys.argv[2:]:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import llama_cpp_check  # noqa: F401
    parent = os.getppid()
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    listener.settimeout(1.0)
    # Monitors are reaped by the kernel; each resets this before it forks its script.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    while os.getppid() == parent:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        conn.settimeout(None)
        if os.fork() == 0:
            listener.close()
            serve_one(conn)
        conn.close()
    os.unlink(path)


if __name__ == "__main__":
    main()
