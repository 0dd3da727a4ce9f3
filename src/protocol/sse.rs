//! What a browser's `EventSource` makes of one block of a server-sent event stream (WHATWG HTML
//! §9.2.6, "Interpreting an event stream"), for our tests and clients: the server writes these
//! blocks (`http::folder_stream`), and reading them back the browser's way is how the tests
//! check the framing.

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `event:` (default `message`).
    pub kind: String,
    /// `id:` (the last event id a reconnection sends back).
    pub id: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// The event one block (the text between blank lines) dispatches; None for a block without
/// `data:` (a `retry:` field, a comment heartbeat), which dispatches nothing.
pub fn interpret(block: &str) -> Option<Event> {
    let (mut kind, mut id, mut data) = ("message".to_string(), String::new(), Vec::new());
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_string();
        match field {
            "event" => kind = value,
            "id" => id = value,
            "data" => data.push(value),
            _ => {}
        }
    }
    (!data.is_empty()).then(|| Event { kind, id, data: data.join("\n") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_read_as_a_browser_reads_them() {
        let e = interpret("event: listing\nid: 1\ndata: {\"a\":\ndata: 1}").unwrap();
        assert_eq!((e.kind.as_str(), e.id.as_str(), e.data.as_str()), ("listing", "1", "{\"a\":\n1}"));
        assert_eq!(interpret("id: 2\ndata:x").unwrap().kind, "message");
        assert_eq!(interpret("retry: 1000"), None);
        assert_eq!(interpret(": heartbeat"), None);
    }
}
