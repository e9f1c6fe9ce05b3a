"""Pure, sans-IO translators between API formats.

One module per pair, named `<client>_on_<provider>.py` after the format the client speaks
and the format of the provider that serves it: `chat_on_messages.py` serves a Chat
Completions client from an Anthropic Messages provider, `messages_on_chat.py` the
reverse. Every pair module exports the same verbs, which `codecs.py` puts in its table
as they are:

- `translate_request(body, default_max_tokens) -> body` (client format → provider's);
- `translate_response(answer) -> (answer, Usage)` (provider format → client's);
- `translate_error(status, body) -> (status, body)` (provider error → client's shape);
- one stream class, `<Client>On<Provider>Stream` (a stream.StreamTranslator), built by
  `for_request(model, body, injected_usage)`, that turns the provider's event stream
  into the client's.

Same-format pairs (a client on a provider of its own format) live in `native.py`: the
body and stream bytes pass untouched and only usage is read. Helpers for one format live
in its own module (`chat.py`, `anthropic.py`). Untrusted JSON is read through
`json_values.py`: a client body of the wrong shape is a 400 naming the field, a provider
answer of the wrong shape a 502 (MalformedUpstream), a stream event of the wrong shape
ends the stream with the client format's error event.
"""
