"""The supervisor's rules, on a clock the test moves: pauses that double with each quick exit
up to a ceiling and start over after a stable run, starts that fail and are retried, and the
order of the stop."""

from __future__ import annotations

from infra.supervisor import Backoff, Supervised, Supervisor


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeProcess(Supervised):
    """A process that runs until the test ends it; its starts fail while ``refuse`` is set."""

    def __init__(self, name: str, journal: list[str]) -> None:
        self.name = name
        self.journal = journal
        self.running = True
        self.starts = 0
        self.refuse = False

    def start(self) -> FakeProcess:
        if self.refuse:
            raise RuntimeError(f"port of {self.name} is taken\nmore detail")
        self.starts += 1
        self.running = True
        return self

    def exited(self) -> str | None:
        return None if self.running else "-9"

    def terminate(self) -> None:
        self.journal.append(f"terminate {self.name}")
        self.running = False

    def wait_stopped(self) -> None:
        self.journal.append(f"stopped {self.name}")


def supervised(*names: str) -> tuple[Supervisor, Clock, list[str], dict[str, FakeProcess]]:
    clock, said, journal = Clock(), list[str](), list[str]()
    processes = {name: FakeProcess(name, journal) for name in names}
    supervisor = Supervisor(said.append, Backoff(0.5, 30.0, 30.0), clock)
    supervisor.keep(*processes.values())
    return supervisor, clock, said, processes


def crash_and_restart(
    supervisor: Supervisor, clock: Clock, process: FakeProcess, ran: float
) -> None:
    """The process runs ``ran`` seconds and dies; the supervisor notices, and starts it again
    once its pause is over."""
    clock.now += ran
    process.running = False
    supervisor.tend()
    clock.now += 60  # past any pause
    supervisor.tend()
    assert process.running


def test_quick_exits_double_the_pause_up_to_the_ceiling() -> None:
    supervisor, clock, said, processes = supervised("relay")
    for _ in range(8):
        crash_and_restart(supervisor, clock, processes["relay"], ran=1)
    pauses = [line.split("restarting in ")[1].split(" s")[0] for line in said]
    assert pauses == ["0.5", "1.0", "2.0", "4.0", "8.0", "16.0", "30.0", "30.0"]
    assert said[2] == "relay exited (-9); restarting in 2.0 s (restart 3)"


def test_a_process_that_stayed_up_is_restarted_quickly_again() -> None:
    supervisor, clock, said, processes = supervised("project")
    for _ in range(3):
        crash_and_restart(supervisor, clock, processes["project"], ran=30)
    assert all("restarting in 0.5 s" in line for line in said), said


def test_nothing_starts_before_the_pause_is_over() -> None:
    supervisor, clock, _, processes = supervised("notify")
    processes["notify"].running = False
    supervisor.tend()
    clock.now += 0.4
    supervisor.tend()
    assert processes["notify"].starts == 0
    clock.now += 0.1
    supervisor.tend()
    assert processes["notify"].starts == 1


def test_a_start_that_fails_is_said_and_tried_again_later() -> None:
    supervisor, clock, said, processes = supervised("broker")
    broker = processes["broker"]
    broker.running, broker.refuse = False, True
    supervisor.tend()
    clock.now += 0.5
    supervisor.tend()
    assert said[-1] == (
        "broker did not start (port of broker is taken); see its log; trying again in 1.0 s"
    )
    broker.refuse = False
    clock.now += 1.0
    supervisor.tend()
    assert broker.running and broker.starts == 1


def test_stop_ends_the_workers_before_the_servers_they_use() -> None:
    clock, said, journal = Clock(), list[str](), list[str]()
    supervisor = Supervisor(said.append, clock=clock)
    supervisor.keep(FakeProcess("postgres", journal))
    supervisor.keep(FakeProcess("serve", journal), FakeProcess("relay", journal))
    supervisor.stop()
    assert journal == [
        "terminate serve",
        "terminate relay",
        "stopped serve",
        "stopped relay",
        "terminate postgres",
        "stopped postgres",
    ]
    assert said == []  # a stop is not an exit to report
