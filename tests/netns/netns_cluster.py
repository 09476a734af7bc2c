"""A Weir cluster across Linux network namespaces on one machine: one namespace per "host" (the
job manager in one, each task manager in its own), joined by veth pairs to a bridge, each with an
address in 10.213.<n>.0/24 that exists only inside these namespaces, and a name
(<host>.weir-test, through /etc/netns/<ns>/hosts, which `ip netns exec` mounts over /etc/hosts).
A temp directory stands in for the NFS mount every host shares (checkpoints, HA, output).

Faults: a host's link down/up, a partition between two hosts (a /32 route via a gateway that does
not exist, in both namespaces: their packets are dropped silently, while both still reach
everyone else), a token bucket (tc tbf) on a host's link, netem where the kernel has it.

Everything it creates is named after the creating process (wmh-<pid>-<host>, links wm<pid hex>…)
and removed at the end, even on failure; leftovers of a dead run are removed at the next start.
Needs root and iproute2; NetnsUnavailable says why not otherwise."""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import CLI_BIN, GEN_CERTS, JM_BIN, TM_BIN, ProcessCluster, wait_for  # noqa: E402

DOMAIN = "weir-test"
JM_PORT = 6123


class NetnsUnavailable(Exception):
    """Network namespaces cannot be made here (the reason is the message)."""


def run(*argv, check=True):
    r = subprocess.run(list(argv), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def clean_stale():
    """Removes namespaces, links and /etc/netns entries of runs whose process is gone."""
    r = run("ip", "netns", "list", check=False)
    for line in r.stdout.splitlines():
        m = re.match(r"^(wmh-(\d+)-\S+)", line)
        if m and not pid_alive(int(m.group(2))):
            run("ip", "netns", "del", m.group(1), check=False)
            shutil.rmtree(f"/etc/netns/{m.group(1)}", ignore_errors=True)
    r = run("ip", "-o", "link", "show", check=False)
    for line in r.stdout.splitlines():
        m = re.match(r"^\d+: (wm([0-9a-f]{6})[bh]\d*)[@:]", line)
        if m and not pid_alive(int(m.group(2), 16)):
            run("ip", "link", "del", m.group(1), check=False)


def check_available():
    """Raises NetnsUnavailable with the reason when namespaces cannot be made."""
    if os.geteuid() != 0:
        raise NetnsUnavailable("not root: network namespaces need CAP_NET_ADMIN")
    if not shutil.which("ip"):
        raise NetnsUnavailable("no `ip` (iproute2)")
    name = f"wmh-{os.getpid()}-probe"
    r = run("ip", "netns", "add", name, check=False)
    if r.returncode != 0:
        raise NetnsUnavailable("ip netns add failed: " + r.stderr.strip())
    try:
        r = run("ip", "netns", "exec", name, "true", check=False)
        if r.returncode != 0:
            raise NetnsUnavailable("ip netns exec failed: " + r.stderr.strip())
    finally:
        run("ip", "netns", "del", name, check=False)


class Net:
    """The namespaces, the bridge and the links. hosts: names ("jm", "tm1", ...)."""

    def __init__(self, hosts):
        check_available()
        clean_stale()
        pid = os.getpid()
        self.tag = f"{pid:06x}"
        self.subnet = random.Random(pid).randrange(1, 250)
        self.bridge = f"wm{self.tag}b"
        self.hosts = list(hosts)
        self.ns, self.ip, self.veth = {}, {}, {}
        self.created_ns, self.created_links = [], []
        self.qdiscs = set()
        try:
            run("ip", "link", "add", self.bridge, "type", "bridge")
            self.created_links.append(self.bridge)
            run("ip", "link", "set", self.bridge, "up")
            for i, h in enumerate(self.hosts):
                ns = f"wmh-{pid}-{h}"
                run("ip", "netns", "add", ns)
                self.created_ns.append(ns)
                veth = f"wm{self.tag}h{i}"
                run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
                self.created_links.append(veth)
                run("ip", "link", "set", veth, "master", self.bridge, "up")
                ip = f"10.213.{self.subnet}.{i + 1}"
                run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
                run("ip", "-n", ns, "link", "set", "eth0", "up")
                run("ip", "-n", ns, "link", "set", "lo", "up")
                self.ns[h], self.ip[h], self.veth[h] = ns, ip, veth
            hosts_file = "127.0.0.1 localhost\n" + "".join(
                f"{self.ip[h]} {h}.{DOMAIN}\n" for h in self.hosts)
            for h in self.hosts:
                d = f"/etc/netns/{self.ns[h]}"
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, "hosts"), "w") as f:
                    f.write(hosts_file)
        except BaseException:
            self.close()
            raise

    def name(self, host):
        return f"{host}.{DOMAIN}"

    def exec_argv(self, host, argv):
        return ["ip", "netns", "exec", self.ns[host], *argv]

    # ---------------------------------------------------------------- faults
    def link(self, host, up):
        """The host's cable: its bridge-side veth down (no carrier inside) or up."""
        run("ip", "link", "set", self.veth[host], "up" if up else "down")

    def partition(self, a, b, on):
        """Silently drops traffic between hosts a and b (both ways): a /32 route to the other via
        a gateway address nobody has, so packets die at ARP; all other traffic flows."""
        dead_gw = f"10.213.{self.subnet}.254"
        for x, y in ((a, b), (b, a)):
            run("ip", "-n", self.ns[x], "route", "del" if not on else "add", f"{self.ip[y]}/32",
                "via", dead_gw, check=on)
            # Forget the peer's neighbour entry, so a cached one cannot keep the path alive.
            run("ip", "-n", self.ns[x], "neigh", "flush", "to", self.ip[y], check=False)

    def tbf(self, host, rate, on=True):
        """A token bucket on both directions of the host's link (tc tbf)."""
        for argv in (["tc"], ["ip", "netns", "exec", self.ns[host], "tc"]):
            dev = self.veth[host] if len(argv) == 1 else "eth0"
            if on:
                run(*argv, "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate,
                    "burst", "16kb", "latency", "400ms")
            else:
                run(*argv, "qdisc", "del", "dev", dev, "root", check=False)

    def netem_available(self):
        """(True, "") when tc netem works here, else (False, the reason)."""
        h = self.hosts[0]
        r = run("tc", "qdisc", "add", "dev", self.veth[h], "root", "netem", "delay", "1ms",
                check=False)
        if r.returncode != 0:
            return False, "tc netem: " + (r.stderr.strip() or f"exit {r.returncode}")
        run("tc", "qdisc", "del", "dev", self.veth[h], "root", check=False)
        return True, ""

    def netem(self, host, spec, on=True):
        if on:
            run("tc", "qdisc", "add", "dev", self.veth[host], "root", "netem", *spec)
        else:
            run("tc", "qdisc", "del", "dev", self.veth[host], "root", check=False)

    def close(self):
        for ns in self.created_ns:
            shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)
        for link in reversed(self.created_links):
            run("ip", "link", "del", link, check=False)
        for ns in self.created_ns:
            run("ip", "netns", "del", ns, check=False)
        self.created_ns, self.created_links = [], []


class NetnsCluster(ProcessCluster):
    """A job manager in host "jm" and task managers tm-1..tm-N in hosts tm1..tmN, over `net`, all
    advertising their host names; secure (mutual TLS, certificates naming the hosts) unless
    secure=False. The CLI runs in the job manager's namespace. The same methods as
    harness.Cluster that the chaos checks use (dir, cli, job, log, cleanup)."""

    log_dump_limit = 20000

    def __init__(self, net, taskmanagers=3, slots=2, jm_args=(), secure=True):
        self.net = net
        self.dir = tempfile.mkdtemp(prefix="weir-netns-")  # the "NFS mount"
        self.procs = {}
        self.slots = slots
        self.jm = f"{net.name('jm')}:{JM_PORT}"
        self.jm_args = list(jm_args)
        self.tm_args = []
        self.cli_args = []
        self.ha = os.path.join(self.dir, "ha")
        if secure:
            certs = os.path.join(self.dir, "certs")
            hosts = " ".join([net.name(h) for h in net.hosts] + [net.ip[h] for h in net.hosts])
            subprocess.run([GEN_CERTS, certs], check=True, capture_output=True,
                           env={**os.environ, "WEIR_CERT_HOSTS": hosts})
            for role in ("jobmanager", "taskmanager"):
                with open(os.path.join(self.dir, f"{role}.yaml"), "w") as f:
                    f.write("security:\n"
                            f"  tls: {{cert: {certs}/{role}.pem, key: {certs}/{role}.key, ca: {certs}/ca.pem}}\n"
                            f"  token_file: {certs}/token\n")
            self.jm_args += ["--config", os.path.join(self.dir, "jobmanager.yaml")]
            self.tm_args += ["--config", os.path.join(self.dir, "taskmanager.yaml")]
            self.cli_args = ["--tls-ca", f"{certs}/ca.pem", "--token-file", f"{certs}/token"]
        else:
            self.jm_args += ["--insecure"]
        try:
            self.start_jm()
            for i in range(taskmanagers):
                self.start_tm(f"tm-{i + 1}")
            wait_for(lambda: len(self.taskmanagers()) == taskmanagers, 30,
                     f"{taskmanagers} task managers to register")
        except BaseException:
            self.cleanup(dump_logs=True)
            raise

    def _spawn(self, name, host, argv):
        with open(os.path.join(self.dir, f"{name}.log"), "ab") as log:
            self.procs[name] = subprocess.Popen(self.net.exec_argv(host, argv), stdout=log,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def start_jm(self):
        self._spawn("jm", "jm", [JM_BIN, "--rpc-address", self.jm, "--rpc-bind", f"0.0.0.0:{JM_PORT}",
                                 "--rest-address", "127.0.0.1:0", "--ha-dir", self.ha,
                                 "--checkpoint-dir", os.path.join(self.dir, "checkpoints"),
                                 "--savepoint-dir", os.path.join(self.dir, "savepoints"),
                                 *self.jm_args])
        wait_for(lambda: self.cli("list").returncode == 0 or self.exited("jm"), 20,
                 "the job manager to serve")
        if self.exited("jm"):
            raise AssertionError("the job manager exited: " + self.log("jm"))

    restart_jm = start_jm

    def host_of(self, name):
        return "tm" + name.split("-")[1]

    def start_tm(self, name):
        host = self.host_of(name)
        self._spawn(name, host, [TM_BIN, "--jobmanager", self.jm, "--id", name,
                                 "--slots", str(self.slots), "--host", self.net.name(host),
                                 "--rpc-bind", "0.0.0.0:0", "--data-bind", "0.0.0.0:0",
                                 *self.tm_args])

    def signal(self, name, sig):
        self.procs[name].send_signal(sig)

    def cli_argv(self, argv):
        return self.net.exec_argv("jm", argv)  # the CLI runs on the job manager's host
