"""Makes the committed speech samples of the whisper-tiny-en bundle: short English sentences
spoken by espeak-ng (Debian package `espeak-ng`, voice en-us), resampled from espeak's 22050 Hz
to 16 kHz mono 16-bit PCM WAV, and `samples.json` ([{file, text}]).

Run from the repository root:
    .deps/bundles-venv/bin/python models/whisper-tiny-en/samples/make_samples.py
Needs numpy and the `espeak-ng` program. The WAVs are committed; this script documents how they
were made (other espeak-ng versions may change the audio slightly).
"""

from __future__ import annotations

import io
import json
import subprocess
import wave
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RATE = 16_000
SENTENCES = [
    ("fox.wav", "The quick brown fox jumps over the lazy dog."),
    ("invoice.wav", "Please send the invoice to the accounting team by Friday."),
    ("weather.wav", "The weather today is sunny with a light breeze."),
    ("window.wav", "Open the window and let the fresh air in."),
]


def speak(text: str) -> tuple[np.ndarray, int]:
    """espeak-ng's WAV for `text` as float samples in [-1, 1] and its sample rate."""
    wav = subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "150", "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    with wave.open(io.BytesIO(wav)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, "espeak-ng writes 16-bit mono"
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float64) / 32768.0, rate


def resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Band-limited resampling by zero-padding, FFT, truncating the spectrum and inverse FFT."""
    pad = src // 10  # 100 ms of silence each side keeps the FFT's wrap-around away from speech
    x = np.concatenate([np.zeros(pad), x, np.zeros(pad)])
    n_out = int(round(len(x) * dst / src))
    spec = np.fft.rfft(x)
    keep = n_out // 2 + 1
    out = np.fft.irfft(spec[:keep], n_out) * (n_out / len(x))
    return out


def main() -> None:
    entries = []
    for name, text in SENTENCES:
        x, rate = speak(text)
        y = resample(x, rate, RATE)
        peak = np.max(np.abs(y))
        y = y * (0.8 / peak)  # normalise to 80 % full scale
        pcm = np.clip(np.round(y * 32767.0), -32768, 32767).astype("<i2")
        with wave.open(str(HERE / name), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(pcm.tobytes())
        entries.append({"file": name, "text": text})
        print(f"{name}: {len(pcm) / RATE:.2f} s, {(HERE / name).stat().st_size} bytes")
    (HERE / "samples.json").write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
