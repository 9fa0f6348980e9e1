"""Drives the DeepNode gateway with OpenAI's official Python client (devnet/tests/gateway_e2e.rs).

Usage: openai_client.py BASE_URL CHAT_MODEL EMBED_MODEL SPEECH_MODEL WAV
Prints one JSON object with what each call returned; the Rust test asserts on it. Exits non-zero
(with the traceback) when a call that should succeed raises.
"""
import json
import sys
import time
import urllib.request

import openai

base, chat_model, embed_model, speech_model, wav = sys.argv[1:6]
client = openai.OpenAI(base_url=base + "/v1", api_key="not-needed", max_retries=0, timeout=600)
question = [{"role": "user", "content": "What is the capital of France?"}]
out = {}

models = client.models.list()
out["models"] = {m.id: getattr(m, "deepnode", None) or (m.model_extra or {}).get("deepnode") for m in models.data}
out["retrieved"] = client.models.retrieve(chat_model).id

raw = client.chat.completions.with_raw_response.create(model=chat_model, messages=question, max_tokens=12)
chat = raw.parse()
out["chat"] = {
    "text": chat.choices[0].message.content,
    "finish_reason": chat.choices[0].finish_reason,
    "usage": chat.usage.model_dump(),
    "task_id": raw.headers.get("x-deepnode-task-id"),
    "verified": raw.headers.get("x-deepnode-verified"),
    "worker": raw.headers.get("x-deepnode-worker"),
}



def task_status(task_id):
    with urllib.request.urlopen(f"{base}/v1/tasks/{task_id}", timeout=10) as r:
        return json.load(r)["status"]


parts, finish, usage, info = [], None, None, None
status_at_first_token, first_token_ms = None, None
started = time.monotonic()
stream = client.chat.completions.with_raw_response.create(
    model=chat_model,
    messages=question,
    max_tokens=12,
    stream=True,
    stream_options={"include_usage": True},
)
stream_task = stream.headers.get("x-deepnode-task-id")
for chunk in stream.parse():
    if chunk.choices:
        choice = chunk.choices[0]
        if choice.delta.content:
            if not parts:
                first_token_ms = (time.monotonic() - started) * 1000
                # the worker streams while it generates: the task is not committed yet
                status_at_first_token = task_status(stream_task)
            parts.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
            info = (chunk.model_extra or {}).get("deepnode")
    if chunk.usage:
        usage = chunk.usage.model_dump()
out["stream"] = {
    "text": "".join(parts),
    "chunks": len(parts),
    "finish_reason": finish,
    "usage": usage,
    "task_id": stream_task,
    "deepnode": info,
    "status_at_first_token": status_at_first_token,
    "first_token_ms": first_token_ms,
    "total_ms": (time.monotonic() - started) * 1000,
}

# a caller that walks away after the first token: the task still completes (the test checks it)
left = client.chat.completions.with_raw_response.create(
    model=chat_model, messages=question, max_tokens=12, stream=True
)
out["abandoned_task_id"] = left.headers.get("x-deepnode-task-id")
abandoned = left.parse()
for chunk in abandoned:
    if chunk.choices and chunk.choices[0].delta.content:
        break
abandoned.close()

emb = client.embeddings.create(model=embed_model, input=["A man is eating food.", "A man is eating a piece of bread."])
vecs = [d.embedding for d in emb.data]
out["embeddings"] = {
    "n": len(vecs),
    "dims": len(vecs[0]),
    "cosine": sum(a * b for a, b in zip(vecs[0], vecs[1])),
    "prompt_tokens": emb.usage.prompt_tokens,
}
flt = client.embeddings.create(model=embed_model, input="A man is eating food.", encoding_format="float")
out["float_vs_base64"] = max(abs(a - b) for a, b in zip(flt.data[0].embedding, vecs[0]))

with open(wav, "rb") as f:
    heard = client.audio.transcriptions.create(model=speech_model, file=f)
with open(wav, "rb") as f:
    heard_text = client.audio.transcriptions.create(model=speech_model, file=f, response_format="text")
out["transcription"] = {"text": heard.text, "text_format": heard_text if isinstance(heard_text, str) else str(heard_text)}


def error_of(call):
    try:
        call()
    except openai.APIStatusError as e:
        return {"status": e.status_code, "body": e.body}
    return None


out["errors"] = {
    "unknown_model": error_of(lambda: client.chat.completions.create(model="deepnode/999", messages=question)),
    "wrong_kind": error_of(lambda: client.embeddings.create(model=chat_model, input="hi")),
    "unknown_field": error_of(
        lambda: client.chat.completions.create(model=chat_model, messages=question, extra_body={"tmperature": 0})
    ),
    "zero_max_tokens": error_of(lambda: client.chat.completions.create(model=chat_model, messages=question, max_tokens=0)),
    "empty_input": error_of(lambda: client.embeddings.create(model=embed_model, input=["ok", ""])),
}
print(json.dumps(out))
