"""`medmec nursing news2` and the argument errors of `medmec serve nursing`, as a user runs them."""
import json
import subprocess
import sys


def run(*args, stdin=""):
    return subprocess.run([sys.executable, "-m", "medmec", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_news2_scores_each_line_and_goes_on_after_a_bad_one():
    lines = [
        {"respiration_rate": 16, "spo2": 97, "spo2_scale": 1, "on_oxygen": False,
         "systolic_bp": 120, "pulse": 70, "consciousness": "A", "temperature_c": 37.0},
        {"respiration_rate": 16, "spo2": 140, "spo2_scale": 1, "on_oxygen": False,
         "systolic_bp": 120, "pulse": 70, "consciousness": "A", "temperature_c": 37.0},
        "this is not JSON",
        {"respiration_rate": 23, "spo2": 95, "spo2_scale": 2, "on_oxygen": True,
         "systolic_bp": 100, "pulse": 112, "consciousness": "A", "temperature_c": 38.5},
        {"pulse": 80},
    ]
    stdin = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    result = run("nursing", "news2", stdin=stdin)
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 5
    assert out[0] == {"score": 0, "risk": "low", "parameters": {
        "respiration_rate": 0, "spo2": 0, "on_oxygen": 0, "systolic_bp": 0, "pulse": 0,
        "consciousness": 0, "temperature_c": 0}}
    assert "spo2" in out[1]["error"]
    assert "error" in out[2]
    # 2 (RR) + 2 (SpO2 95 on O2, scale 2) + 2 (O2) + 2 (SBP) + 2 (pulse) + 1 (temp) = 11
    assert (out[3]["score"], out[3]["risk"]) == (11, "high")
    assert out[3]["parameters"]["spo2"] == 2
    assert "respiration_rate" in out[4]["error"]


def test_serve_nursing_says_what_is_wrong_with_its_configuration(tmp_path):
    tokens = tmp_path / "tokens.json"
    result = run("serve", "nursing", "--ward", "ward-a", "--tokens-file", str(tokens))
    assert result.returncode == 1 and "tokens file" in result.stderr
    tokens.write_text(json.dumps({"tokens": {
        "a-long-enough-token-1": {"role": "nurse", "ward": "ward-a", "subject": "n1"}}}))
    result = run("serve", "nursing", "--ward", "ward-a", "--database-env", "NO_SUCH_DSN_VARIABLE",
                 "--tokens-file", str(tokens))
    assert result.returncode == 1 and "NO_SUCH_DSN_VARIABLE" in result.stderr
