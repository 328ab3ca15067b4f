"""benchmarks/_peers.py, the one helper the benchmark scripts launch peers with: RESULT lines
parsed, streamed output collected, failures and missing interpreters named."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _peers  # noqa: E402

SCRIPT = """
import json, sys
print("warming up")
print("RESULT " + json.dumps({"steps_per_s": 1.5, "seed": int(sys.argv[1])}))
print("RESULT " + json.dumps({"steps_per_s": 2.5, "seed": int(sys.argv[1])}))
sys.exit(int(sys.argv[2]))
"""


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "peer.py"
    path.write_text(SCRIPT)
    return path


def test_parse_results_reads_every_result_line_in_order():
    text = 'x\nRESULT {"a": 1}\nnoise RESULT {"b": 2}\nRESULT {"c": [1, 2]}\n'
    assert _peers.parse_results(text) == [{"a": 1}, {"c": [1, 2]}]


@pytest.mark.parametrize("stream", [False, True])
def test_launch_collects_output_and_results(script, stream):
    echoed = []
    run = _peers.launch(sys.executable, [script, "7", "0"], cwd=None, stream=stream,
                        echo=echoed.append)
    assert run.ok and run.returncode == 0
    assert run.results == [{"steps_per_s": 1.5, "seed": 7}, {"steps_per_s": 2.5, "seed": 7}]
    assert run.result == {"steps_per_s": 2.5, "seed": 7}
    assert ("warming up" in "".join(echoed)) is stream


def test_a_failing_peer_raises_returns_or_exits_as_asked(script):
    with pytest.raises(_peers.PeerError, match="rc 3"):
        _peers.launch(sys.executable, [script, "1", "3"], cwd=None)
    run = _peers.launch(sys.executable, [script, "1", "3"], cwd=None, on_failure="return")
    assert not run.ok and run.returncode == 3
    with pytest.raises(SystemExit):
        _peers.launch(sys.executable, [script, "1", "3"], cwd=None, on_failure="exit")


def test_a_missing_peer_names_the_setup_command(tmp_path):
    with pytest.raises(_peers.PeerMissingError, match="bash ../shared/anchors/setup.sh sb3"):
        _peers.launch(str(tmp_path / "no" / "python"), ["x.py"], peer="sb3")
    with pytest.raises(_peers.PeerMissingError, match="setup.sh purejaxrl"):
        _peers.require_python(str(tmp_path / "none"), "purejaxrl")


def test_no_result_line_is_an_error(tmp_path):
    quiet = tmp_path / "quiet.py"
    quiet.write_text("print('nothing to report')\n")
    run = _peers.launch(sys.executable, [quiet], cwd=None)
    with pytest.raises(_peers.PeerError, match="no RESULT line"):
        _ = run.result
