"""One upload with tuspy 1.1.0, unmodified, with `upload_checksum=True` (an `Upload-Checksum:
sha1 <base64>` on every PATCH), as the upload tests (tests/it/tus_clients.rs) drive it against
Plait and against the reference @tus/server. A run that loses its connection prints where it
got to and exits 1; the test resumes by running it again with the upload URL it printed
(`uploadUrl`): tuspy then asks the server for the offset (HEAD) and sends the rest.

    python tus_upload.py '<json>'

The JSON object: endpoint (the creation URL), file (a path), chunkSize (bytes, default 4 MiB:
a checksum covers a whole PATCH, so a cut PATCH is lost whole and the chunk bounds what a cut
costs), metadata (object of strings), headers (object), uploadUrl (resume this upload),
timeoutSecs (default 120).

It prints one JSON line on stdout: {ok, url, bytes, elapsedMs, offset, resumeOffset,
ackedOffsets, error?}: offset is where the client got to, resumeOffset the offset the server
reported when the run resumed an upload, ackedOffsets the `Upload-Offset`s of the PATCH answers.
Exits 0 only when the whole file is uploaded.
"""

import json
import os
import signal
import sys
import time

from tusclient import client
from tusclient.exceptions import TusCommunicationError, TusUploadFailed


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python tus_upload.py '<json>'", file=sys.stderr)
        return 2
    opts = json.loads(sys.argv[1])
    path = opts["file"]
    size = os.path.getsize(path)
    started = time.monotonic()
    report = {
        "ok": False,
        "url": opts.get("uploadUrl"),
        "bytes": size,
        "elapsedMs": 0,
        "offset": 0,
        "resumeOffset": None,
        "ackedOffsets": [],
    }

    def finish(error=None) -> int:
        report["elapsedMs"] = round((time.monotonic() - started) * 1000)
        if error is not None:
            report["error"] = str(error)[:2000]
        print(json.dumps(report), flush=True)
        return 0 if report["ok"] else 1

    def on_alarm(_signum, _frame):
        raise TimeoutError(f"timed out after {opts.get('timeoutSecs', 120)} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(opts.get("timeoutSecs", 120)))

    uploader = None
    try:
        tus = client.TusClient(opts["endpoint"], headers=opts.get("headers", {}))
        # With `url`, tuspy asks the server for the upload's offset (HEAD) before it sends.
        uploader = tus.uploader(
            path,
            url=opts.get("uploadUrl"),
            chunk_size=int(opts.get("chunkSize", 4 << 20)),
            metadata=opts.get("metadata", {}),
            upload_checksum=True,
            retries=0,
        )
        if opts.get("uploadUrl"):
            report["resumeOffset"] = uploader.offset
        # Uploader.upload(), step by step, so that every acknowledged offset is recorded.
        if not uploader.url:
            uploader.set_url(uploader.create_url())
            uploader.offset = 0
        report["url"] = uploader.url
        while uploader.offset < size:
            uploader.upload_chunk()
            report["ackedOffsets"].append(uploader.offset)
        report["ok"] = uploader.offset == size
        report["offset"] = uploader.offset
        return finish(None if report["ok"] else f"ended at offset {uploader.offset} of {size}")
    except (TusCommunicationError, TusUploadFailed, TimeoutError, OSError) as error:
        if uploader is not None:
            report["url"] = uploader.url
            report["offset"] = uploader.offset
        status = getattr(error, "status_code", None)
        return finish(f"{type(error).__name__} (status {status}): {error}")


if __name__ == "__main__":
    sys.exit(main())
