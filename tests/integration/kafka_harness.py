"""The development Kafka broker (weir-dev-broker) for integration tests: started on ephemeral
ports in a temp dir, driven through its control channel, always stopped at the end; plus the
weir-kafka-tool client (produce, committed offsets, watermarks)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile

from harness import BUILD, wait_for

BROKER_BIN = os.path.join(BUILD, "deploy/dev_broker/weir-dev-broker")
TOOL_BIN = os.path.join(BUILD, "deploy/dev_broker/weir-kafka-tool")


class DevBroker:
    def __init__(self, brokers=1, topics=(), workdir=None):
        self.dir = workdir or tempfile.mkdtemp(prefix="weir-broker-")
        self.own_dir = workdir is None
        self.bootstrap_file = os.path.join(self.dir, "kafka.bootstrap")
        control_file = os.path.join(self.dir, "kafka.control")
        self.log_path = os.path.join(self.dir, "dev-broker.log")
        argv = [BROKER_BIN, "--brokers", str(brokers), "--bootstrap-file", self.bootstrap_file,
                "--control-file", control_file]
        for name, partitions in topics:
            argv += ["--topic", f"{name}:{partitions}"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

        def read(path):
            if self.proc.poll() is not None:
                raise AssertionError(f"weir-dev-broker exited with {self.proc.returncode}: "
                                     f"{self.log()}")
            if not os.path.exists(path):
                return None
            with open(path) as f:
                return f.read().strip() or None
        self.bootstrap = wait_for(lambda: read(self.bootstrap_file), 15, "the dev broker")
        self.control_port = int(read(control_file))
        self.sock = socket.create_connection(("127.0.0.1", self.control_port), timeout=30)
        self.reader = self.sock.makefile("r")

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def control(self, line, check=True):
        """Sends one command; returns the reply line ("ok ..." or "error: ...")."""
        self.sock.sendall((line + "\n").encode())
        reply = self.reader.readline().rstrip("\n")
        if check and not reply.startswith("ok"):
            raise AssertionError(f"dev broker: {line!r} -> {reply!r}")
        return reply

    def produce(self, topic, count, start=0, rate=None):
        argv = [TOOL_BIN, "produce", "--bootstrap", self.bootstrap, "--topic", topic,
                "--count", str(count), "--start", str(start)]
        if rate:
            argv += ["--rate", str(rate)]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def produce_events(self, topic, count, bad_every=0, rate=None, step_ms=500):
        """Sample JSON events (see weir-kafka-tool produce --events), every bad_every-th one
        malformed."""
        argv = [TOOL_BIN, "produce", "--bootstrap", self.bootstrap, "--topic", topic,
                "--count", str(count), "--events", "--bad-every", str(bad_every),
                "--step-ms", str(step_ms)]
        if rate:
            argv += ["--rate", str(rate)]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def produce_sync(self, topic, count, start=0, rate=None, timeout=120):
        p = self.produce(topic, count, start, rate)
        out, err = p.communicate(timeout=timeout)
        if p.returncode != 0:
            raise AssertionError(f"weir-kafka-tool produce failed: {err}")

    def committed(self, group, topic):
        r = subprocess.run([TOOL_BIN, "committed", "--bootstrap", self.bootstrap, "--group", group,
                            "--topic", topic], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"weir-kafka-tool committed failed: {r.stderr}")
        return {int(k): v for k, v in json.loads(r.stdout).items()}

    def offsets(self, topic):
        r = subprocess.run([TOOL_BIN, "offsets", "--bootstrap", self.bootstrap, "--topic", topic],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"weir-kafka-tool offsets failed: {r.stderr}")
        return {int(k): tuple(v) for k, v in json.loads(r.stdout).items()}

    def stop(self):
        try:
            self.reader.close()
            self.sock.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
