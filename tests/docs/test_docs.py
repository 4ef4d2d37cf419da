"""The docs check: console blocks of README.md and docs/*.md that are marked for it are run against
the real binary and their output compared with what the block shows.

A block is marked by an HTML comment on the line right before its ```console fence:

    <!-- docs-check -->
    <!-- docs-check: STEP; STEP; ... -->

In the block, a line starting with `$ ` is a command (a line ending in `\\` continues it on the
next), and the lines after it up to the next `$ ` are its expected output (stdout and stderr as
they interleave). The steps set the block up, in the order given, before its commands run:

    run COMMAND       a shell command, like a block's own, that must exit 0 (output not shown)
    serve ARGS        `svcbox serve ARGS` in the background, waited for until its /readyz (at the
                      address its log names) answers 200; stopped after the block, exit code 0
    background        the block's first command, a plain `svcbox serve ARGS`, runs as `serve`
                      does; what the block shows under it is compared with its log after the
                      block's other commands
    wait-log REGEX    wait until the last serve's log matches REGEX
    addr IP...        give the block's namespace these addresses (on lo, as root)
    listen IP:PORT    a TCP server as nobody that accepts and closes (a pod a TCP probe finds)

Every wait is bounded (15 s). How each block runs:

- in a network namespace of its own (the harness's Namespace: only lo, no route out), whose
  resolv.conf names 127.0.0.53, where nothing listens: a serve's default upstream is never the
  host's resolver, and no packet leaves the namespace;
- as nobody for real (setpriv; checked: uid 65534 and no effective capability), through
  `bash --noprofile --norc -c`, with nothing of the caller's environment but HOME, XDG_STATE_HOME,
  SVCBOX_DB (in a temporary folder nobody owns), LANG=C.UTF-8 and a PATH whose `svcbox` is a copy
  of SVCBOX_BIN; the working folder holds a copy of examples/, as a checkout would;
- a marked block whose text (marker included) contains `sudo`, `kill`, `systemctl` or `docker` is
  refused: the check fails on it. So does a marker that is not right before a ```console fence, a
  marked block without commands, an unknown step, and a run that finds no marked block at all.

Comparison, per command, after this normalization of both sides and nothing more: trailing
whitespace and trailing empty lines dropped; an age in a table column (two spaces, then `0s`,
`3s`, `2m`, `5h`, `2m30s`...) becomes <age>; a DNS message id (`id: 4851`) becomes <id>. A line
that is only `...` matches any number of lines (none too); `...` inside a line matches any text in
that line. Everything else must be equal, column alignment included, and every command must
exit 0 (a block that shows a failure says so in its command: `svcbox get svc x || echo "exit $?"`).
"""
import ipaddress
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
from svcbox_e2e import (AS_NOBODY, BIN, REPO, Namespace, ServeProcess, kill_process,  # noqa: E402
                        require, run, temp_dir, wait_for)

NOBODY = 65534
WAIT = 15  # seconds, every wait of a block
COMMAND_TIMEOUT = 20  # seconds, one command of a block
REFUSED = re.compile(r"sudo|kill|systemctl|docker")
MARKER = re.compile(r"^\s*<!--\s*docs-check\s*(?::(?P<steps>.*?))?-->\s*$")
ANY_MARKER = re.compile(r"<!--\s*docs-check")
FENCE = re.compile(r"^\s*```")
CONSOLE_FENCE = re.compile(r"^\s*```console\s*$")
AGE = re.compile(r"(?<=  )\d+[smhd](?:\d+[smh])?(?=\s|$)")
DNS_ID = re.compile(r"\bid: \d+\b")
STEPS = ("run", "serve", "background", "wait-log", "addr", "listen")
# A TCP server that accepts and closes, for `listen`; its first line says it listens.
LISTENER = ("import socket, sys\n"
            "s = socket.create_server((sys.argv[1], int(sys.argv[2])))\n"
            "print('listening', flush=True)\n"
            "while True:\n"
            "    s.accept()[0].close()\n")


def doc_files():
    docs = os.path.join(REPO, "docs")
    return [os.path.join(REPO, "README.md")] + sorted(
        os.path.join(docs, name) for name in os.listdir(docs) if name.endswith(".md"))


class Command:
    def __init__(self, line, text):
        self.line, self.text, self.expected = line, text, []


class Block:
    def __init__(self, path, line, steps):
        self.path, self.line, self.steps, self.commands = path, line, steps, []

    @property
    def where(self):
        return f"{os.path.relpath(self.path, REPO)}:{self.line}"


def parse_steps(text):
    """[(verb, argument string)] of a marker's steps; ValueError names what is wrong."""
    steps = []
    for part in (text or "").split(";"):
        part = part.strip()
        if not part:
            continue
        verb, _, argument = part.partition(" ")
        argument = argument.strip()
        if verb not in STEPS:
            raise ValueError(f"unknown step {verb!r} (steps: {', '.join(STEPS)})")
        if verb == "background" and argument:
            raise ValueError("`background` takes no argument")
        if verb in ("run", "wait-log", "addr", "listen") and not argument:
            raise ValueError(f"`{verb}` needs an argument")
        if verb == "wait-log":
            re.compile(argument)
        if verb == "addr":
            for address in argument.split():
                ipaddress.ip_address(address)
        if verb == "listen":
            host, _, port = argument.rpartition(":")
            ipaddress.ip_address(host)
            if not port.isdigit():
                raise ValueError(f"`listen` needs IP:PORT, not {argument!r}")
        steps.append((verb, argument))
    verbs = [verb for verb, _ in steps]
    if verbs.count("background") > 1:
        raise ValueError("one `background` per block")
    for i, verb in enumerate(verbs):
        if verb == "wait-log" and "serve" not in verbs[:i] and "background" not in verbs[:i]:
            raise ValueError("`wait-log` needs a `serve` or `background` step before it")
    return steps


def parse(path, text):
    """(marked blocks, unmarked console blocks' line numbers, errors) of one Markdown file."""
    lines = text.split("\n")
    blocks, unmarked, errors = [], [], []
    where = lambda number: f"{os.path.relpath(path, REPO)}:{number}"  # noqa: E731
    i = 0
    while i < len(lines):
        line = lines[i]
        if ANY_MARKER.search(line):
            match = MARKER.match(line)
            following = lines[i + 1] if i + 1 < len(lines) else ""
            if not match:
                errors.append(f"{where(i + 1)}: a docs-check marker must be a line of its own, "
                              f"`<!-- docs-check -->` or `<!-- docs-check: STEP; ... -->`: {line}")
            elif not CONSOLE_FENCE.match(following):
                errors.append(f"{where(i + 1)}: a docs-check marker must be right before a "
                              f"```console fence; the next line is: {following!r}")
        if not FENCE.match(line):
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not FENCE.match(lines[end]):
            end += 1
        if end == len(lines):
            errors.append(f"{where(i + 1)}: a fence that is never closed")
            break
        if CONSOLE_FENCE.match(line):
            marker = MARKER.match(lines[i - 1]) if i > 0 else None
            if marker is None:
                unmarked.append(i + 1)
            else:
                block_errors = []
                refused = sorted(set(REFUSED.findall("\n".join(lines[i - 1:end + 1]))))
                if refused:
                    block_errors.append(f"{where(i + 1)}: refused: a marked block may not contain "
                                        f"{', '.join(refused)} (it would run as is)")
                try:
                    steps = parse_steps(marker.group("steps"))
                except (ValueError, re.error) as error:
                    block_errors.append(f"{where(i)}: bad docs-check marker: {error}")
                    steps = []
                block = Block(path, i + 1, steps)
                continuation = False
                for number in range(i + 1, end):
                    content = lines[number]
                    if continuation:
                        block.commands[-1].text += "\n" + content
                    elif content.startswith("$ "):
                        block.commands.append(Command(number + 1, content[2:]))
                    elif block.commands:
                        block.commands[-1].expected.append(content)
                    elif content.strip():
                        block_errors.append(f"{where(number + 1)}: output before the block's "
                                            f"first `$ ` command")
                    continuation = bool(block.commands) and content.endswith("\\") and \
                        (continuation or content.startswith("$ "))
                if not block.commands:
                    block_errors.append(f"{where(i + 1)}: a marked block without a `$ ` command")
                if any(verb == "background" for verb, _ in steps) and block.commands and \
                        serve_arguments(block.commands[0].text) is None:
                    block_errors.append(f"{where(i + 1)}: `background` needs the block's first "
                                        f"command to be a plain `svcbox serve ...`")
                errors += block_errors
                if not block_errors:
                    blocks.append(block)
        i = end + 1
    return blocks, unmarked, errors


def serve_arguments(command):
    """The arguments of a plain `svcbox serve ARGS [# comment]` command, else None."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return None
    if words[:2] != ["svcbox", "serve"] or any(re.search(r"[|;&<>$`]", w) for w in words):
        return None
    return words[2:]


def normalize(text_lines):
    lines = [DNS_ID.sub("id: <id>", AGE.sub("<age>", line.rstrip())) for line in text_lines]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def line_pattern(expected):
    return re.compile(".*".join(re.escape(part) for part in expected.split("...")))


def matches(expected_lines, actual_lines):
    """Whether the actual lines are what the expected ones show (after normalize): `...` alone on a
    line matches any lines, within a line any text."""
    expected, actual = normalize(expected_lines), normalize(actual_lines)
    patterns = [None if line == "..." else line_pattern(line) for line in expected]
    memo = {}

    def match(i, j):
        if (i, j) not in memo:
            if i == len(patterns):
                result = j == len(actual)
            elif patterns[i] is None:
                result = match(i + 1, j) or (j < len(actual) and match(i, j + 1))
            else:
                result = j < len(actual) and patterns[i].fullmatch(actual[j]) is not None and \
                    match(i + 1, j + 1)
            memo[i, j] = result
        return memo[i, j]

    return match(0, 0)


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def indent(lines):
    return "\n".join("    " + line for line in lines) if lines else "    (nothing)"


def mismatch_report(block, command, expected, actual, note=""):
    return (f"{os.path.relpath(block.path, REPO)}:{command.line}: the output of\n"
            f"    $ {command.text}\ndiffers from what the block shows{note}.\n"
            f"  expected (as written, before normalization):\n{indent(expected)}\n"
            f"  actual:\n{indent(actual)}")


class ParserTest(unittest.TestCase):
    """The check's own rules, without root: what counts as a block, what is refused, what
    matches."""

    def parse(self, text):
        return parse(os.path.join(REPO, "docs", "x.md"), text)

    def test_a_marked_block_is_commands_with_their_output(self):
        blocks, unmarked, errors = self.parse(
            "text\n\n<!-- docs-check: run svcbox apply -f examples/web.yaml; serve --dns-listen "
            "127.0.0.1:1053 -->\n```console\n$ svcbox get svc\nNAME  AGE\nweb   3s\n"
            "$ echo a \\\n  b\na b\n```\n\n```console\n$ ls\n```\n")
        self.assertEqual(errors, [])
        self.assertEqual(unmarked, [13])
        [block] = blocks
        self.assertEqual(block.line, 4)
        self.assertEqual(block.steps, [("run", "svcbox apply -f examples/web.yaml"),
                                       ("serve", "--dns-listen 127.0.0.1:1053")])
        self.assertEqual([(c.line, c.text, c.expected) for c in block.commands],
                         [(5, "svcbox get svc", ["NAME  AGE", "web   3s"]),
                          (8, "echo a \\\n  b", ["a b"])])

    def test_refused_words_fail_the_block(self):
        for word in ("sudo ip netns list", "kill 1", "systemctl stop svcbox", "docker ps",
                     "pkill svcbox"):
            _, _, errors = self.parse(f"<!-- docs-check -->\n```console\n$ {word}\n```\n")
            self.assertTrue(errors and "refused" in errors[0], (word, errors))
        _, _, errors = self.parse("<!-- docs-check: run sudo true -->\n```console\n$ ls\n```\n")
        self.assertIn("refused", errors[0])

    def test_markers_that_check_nothing_fail(self):
        for text in ("<!-- docs-check -->\n\n```console\n$ ls\n```\n",
                     "<!-- docs-check -->\n```sh\nls\n```\n",
                     "<!-- docs-check -->\n```console\n```\n",
                     "<!-- docs-check: frobnicate -->\n```console\n$ ls\n```\n",
                     "<!-- docs-check: wait-log x -->\n```console\n$ ls\n```\n",
                     "<!-- docs-check: background -->\n```console\n$ ls\n```\n",
                     "<!-- docs-check --> trailing\n```console\n$ ls\n```\n"):
            blocks, _, errors = self.parse(text)
            self.assertEqual(blocks, [], text)
            self.assertTrue(errors, text)

    def test_matching(self):
        self.assertTrue(matches(["a", "...", "d"], ["a", "b", "c", "d"]))
        self.assertTrue(matches(["a", "...", "d"], ["a", "d"]))
        self.assertTrue(matches(["a", "..."], ["a"]))
        self.assertFalse(matches(["a", "...", "d"], ["a", "b", "c", "d", "e"]))
        self.assertTrue(matches(["... proxy mode (auto: ...)"], ["12:00 info proxy mode (auto: x)"]))
        self.assertFalse(matches(["... proxy mode (auto: ...)"], ["proxy mode (auto: x) more"]))
        self.assertTrue(matches(["x   2m    ok", ""], ["x   0s    ok  "]))
        self.assertFalse(matches(["x  2m    ok"], ["x   0s    ok"]))  # alignment counts
        self.assertFalse(matches(["timeout: 5m"], ["timeout: 0s"]))  # ages only in table columns
        self.assertTrue(matches(["status: NXDOMAIN, id: 4851"], ["status: NXDOMAIN, id: 17"]))
        self.assertFalse(matches(["a"], ["a", "b"]))
        self.assertFalse(matches(["a", "b"], ["a"]))

    def test_the_repository_docs_parse(self):
        """The docs' markers are well-formed and mark something, also where the blocks cannot
        run (no root)."""
        total = 0
        for path in doc_files():
            blocks, _, errors = parse(path, read(path))
            self.assertEqual(errors, [])
            total += len(blocks)
        self.assertGreater(total, 0, "no marked console block in README.md or docs/*.md")


class DocsCheckTest(unittest.TestCase):
    """Every marked block of README.md and docs/*.md, run as nobody in a namespace of its own."""

    @classmethod
    def setUpClass(cls):
        require(cls, "the docs check (root makes a namespace per block; blocks run as nobody)",
                tools=("setpriv", "bash", "env", "curl", "dig"), netns=True)
        if not os.path.isfile(BIN):
            raise AssertionError(f"no svcbox binary at {BIN} (SVCBOX_BIN)")
        cls.python = shutil.which("python3", path="/usr/bin:/bin")
        if cls.python is None:
            raise AssertionError("no /usr/bin/python3 for `listen` steps")
        # A copy of the binary nobody can run, which a rebuild cannot change under the check.
        cls.bin_dir = temp_dir(cls, "svcbox-docs-bin-")
        os.chmod(cls.bin_dir, 0o755)
        shutil.copy2(BIN, os.path.join(cls.bin_dir, "svcbox"))

    def test_marked_blocks_show_what_the_binary_does(self):
        started = time.monotonic()
        blocks, unmarked, errors = [], [], []
        for path in doc_files():
            found, skipped, bad = parse(path, read(path))
            blocks += found
            unmarked += [f"{os.path.relpath(path, REPO)}:{line}" for line in skipped]
            errors += bad
        failures = list(errors)
        if not blocks:
            failures.append("no marked console block in README.md or docs/*.md: nothing checked")
        commands = 0
        for n, block in enumerate(blocks, start=1):
            block_failures = self.check_block(n, block)
            commands += len(block.commands)
            print(f"{'FAIL' if block_failures else 'ok  '} {block.where} "
                  f"({len(block.commands)} commands, steps: "
                  f"{'; '.join(verb for verb, _ in block.steps) or 'none'})", flush=True)
            failures += block_failures
        print(f"docs check: {len(blocks)} marked console blocks, {commands} commands checked in "
              f"{time.monotonic() - started:.1f} s; {len(unmarked)} console blocks not marked "
              f"({', '.join(unmarked) or 'none'})", flush=True)
        if failures:
            self.fail(f"{len(failures)} docs check failures:\n\n" + "\n\n".join(failures))

    # One block -------------------------------------------------------------------------------

    def check_block(self, n, block):
        """The block's failures as messages, [] when it shows what the binary does."""
        failures = []
        self.ns = None
        self.serves, self.others = [], []
        try:
            self.prepare(n)
            background = self.setup(block)
            for command in block.commands[1 if background else 0:]:
                failure = self.check_command(block, command)
                if failure:
                    failures.append(failure)
            if background:
                command = block.commands[0]
                log = background.log_text().split("\n")
                if not matches(command.expected, log):
                    failures.append(mismatch_report(
                        block, command, command.expected, log, " (run in the background: its log)"))
        except (AssertionError, subprocess.SubprocessError, OSError) as error:
            failures.append(f"{block.where}: {error}")
        finally:
            failures += self.teardown(block)
        return failures

    def prepare(self, n):
        """The block's namespace, folders and environment."""
        self.ns = Namespace(f"docs{n}")
        etc = f"/etc/netns/{self.ns.name}"
        os.makedirs(etc, exist_ok=True)
        with open(os.path.join(etc, "resolv.conf"), "w") as f:
            f.write("nameserver 127.0.0.53\n")
        base = temp_dir(self, f"svcbox-docs{n}-")
        self.work = os.path.join(base, "work")
        for name in ("home", "state", "work"):
            os.mkdir(os.path.join(base, name))
        shutil.copytree(os.path.join(REPO, "examples"), os.path.join(self.work, "examples"))
        for root, dirs, files in os.walk(base):
            for name in [root] + [os.path.join(root, entry) for entry in dirs + files]:
                os.chown(name, NOBODY, NOBODY)
        self.env = {"HOME": os.path.join(base, "home"), "XDG_STATE_HOME": os.path.join(base, "state"),
                    "SVCBOX_DB": os.path.join(base, "registry.db"), "LANG": "C.UTF-8",
                    "PATH": f"{self.bin_dir}:/usr/local/bin:/usr/bin:/bin"}
        self.logs = base
        status = self.as_nobody("cat", "/proc/self/status").stdout
        uid = re.search(r"^Uid:\s+(\d+)\s+(\d+)", status, re.M).groups()
        cap_eff = re.search(r"^CapEff:\s+(\w+)", status, re.M).group(1)
        if uid != (str(NOBODY), str(NOBODY)) or int(cap_eff, 16) != 0:
            raise AssertionError(f"blocks must run as nobody without capabilities: {status}")

    def wrapper(self):
        """What runs a command as nobody with the block's environment and working folder."""
        return (*AS_NOBODY, "env", "-i", f"--chdir={self.work}",
                *(f"{key}={value}" for key, value in self.env.items()))

    def as_nobody(self, *args, timeout=COMMAND_TIMEOUT):
        return subprocess.run(["ip", "netns", "exec", self.ns.name, *self.wrapper(), *args],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, check=False)

    def shell(self, command):
        return self.as_nobody("bash", "--noprofile", "--norc", "-c", command)

    def setup(self, block):
        """Runs the marker's steps; the background serve of the block's first command, if any."""
        background = None
        for verb, argument in block.steps:
            if verb == "addr":
                for address in argument.split():
                    self.ns.x("ip", "addr", "add", address, "dev", "lo")
            elif verb == "listen":
                host, _, port = argument.rpartition(":")
                log = os.path.join(self.logs, f"listen-{host}-{port}.log")
                process = self.ns.start(*self.wrapper(), self.python, "-c", LISTENER, host, port,
                                        log=log)
                self.others.append(process)
                wait_for(f"a listener on {argument}", lambda: process.poll() is not None or
                         "listening" in read(log), WAIT)
                if process.poll() is not None:
                    raise AssertionError(f"`listen {argument}` failed: {read(log)}")
            elif verb == "run":
                result = self.shell(argument)
                if result.returncode != 0:
                    raise AssertionError(f"setup `run {argument}` exited {result.returncode}:\n"
                                         f"{indent(result.stdout.splitlines())}")
            elif verb in ("serve", "background"):
                args = shlex.split(argument) if verb == "serve" else \
                    serve_arguments(block.commands[0].text)
                serve = self.start_serve(args)
                if verb == "background":
                    background = serve
            elif verb == "wait-log":
                self.serves[-1].wait_log(argument, timeout=WAIT)
        return background

    def start_serve(self, args):
        log = os.path.join(self.logs, f"serve{len(self.serves) + 1}.log")
        serve = ServeProcess(*args, log=log, namespace=self.ns, wrapper=self.wrapper(),
                             binary=os.path.join(self.bin_dir, "svcbox"))
        self.serves.append(serve)
        admin = serve.wait_log(r"admin HTTP on (\S+) ", timeout=WAIT).group(1)
        serve.admin = f"http://{admin}"
        wait_for(f"serve {' '.join(args)} to answer 200 on /readyz",
                 lambda: serve.process.poll() is not None or serve.http("/readyz")[0] == 200,
                 WAIT, interval=0.05, context=serve.context)
        if serve.process.poll() is not None:
            raise AssertionError(f"serve {' '.join(args)} exited{serve.context()}")
        return serve

    def check_command(self, block, command):
        try:
            result = self.shell(command.text)
        except subprocess.TimeoutExpired:
            return (f"{os.path.relpath(block.path, REPO)}:{command.line}: `{command.text}` did not "
                    f"end within {COMMAND_TIMEOUT} s")
        actual = result.stdout.split("\n")
        if result.returncode == 0 and matches(command.expected, actual):
            return None
        if result.returncode != 0 and matches(command.expected, actual):
            return (f"{os.path.relpath(block.path, REPO)}:{command.line}: `{command.text}` "
                    f"exited {result.returncode} (a block's commands must exit 0; to show a "
                    f"failure, show it: `... || echo \"exit $?\"`)")
        return mismatch_report(block, command, command.expected, actual,
                               f" (exit code {result.returncode})")

    def teardown(self, block):
        """Stops what the block started (serve: SIGTERM, must exit 0), checks nothing else is
        left in its namespace, removes the namespace."""
        failures = []
        for serve in self.serves:
            code = serve.stop()
            if code != 0:
                failures.append(f"{block.where}: serve exited {code} on SIGTERM{serve.context()}")
        for process in self.others:
            kill_process(process, signal.SIGKILL)
        if self.ns is not None:
            left = run("ip", "netns", "pids", self.ns.name, check=False).stdout.split()
            if left:
                failures.append(f"{block.where}: processes left in the namespace: {left}")
                for pid in left:  # in the block's own namespace: only processes it started
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            self.ns.remove()
        return failures


if __name__ == "__main__":
    unittest.main()
