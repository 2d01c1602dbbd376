import { CONSOLE_WRITE_MAX_BYTES, type ConsoleDataEvent, type ConsoleSubscribeAck, type ConsoleWriteAck } from "@labrig/shared";
import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";
import { useEffect, useRef, useState } from "preact/hooks";
import { liveSocket, onReconnect, request } from "../live.js";
import { tokenFor } from "../leases.js";
import { can, whyNot } from "../session.js";
import { ErrorLine } from "../ui.js";

/**
 * A live serial console in xterm.js: the hub's backlog when it opens, then output as it arrives;
 * keystrokes go to the device as `console.write` (one in flight, the rest batched behind it), so
 * typing fast never reorders or floods the device's action queue.
 */
export function ConsolePanel(props: { host: string; device: string; resource: string; leaseId: string | undefined }) {
  const box = useRef<HTMLDivElement>(null);
  const leaseRef = useRef(props.leaseId);
  leaseRef.current = props.leaseId;
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const term = new Terminal({ fontSize: 13, scrollback: 5000, cursorBlink: true, convertEol: false, theme: { background: "#0d1117" } });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(el);
    fit.fit();
    const resize = new ResizeObserver(() => fit.fit());
    resize.observe(el);
    const shown = { text: "", writes: 0, lastEchoAtMs: 0 };
    window.__labrigConsole = shown;
    const show = (data: string): void => {
      term.write(data, () => {
        shown.lastEchoAtMs = performance.now();
      });
      // Kept short: enough for tests to read the last screens, bounded for a console left open for days.
      shown.text = (shown.text + data).slice(-65_536);
    };
    const sel = { host: props.host, device: props.device, resource: props.resource };

    const onData = (e: ConsoleDataEvent): void => {
      if (e.host !== sel.host || e.device !== sel.device || e.resource !== sel.resource) return;
      if (e.dropped_bytes > 0) show(`\r\n\x1b[33m[labrig: ${e.dropped_bytes} bytes skipped: this browser fell behind the console]\x1b[0m\r\n`);
      show(e.data);
    };
    const socket = liveSocket();
    socket?.on("console.data", onData);
    const subscribe = async (): Promise<void> => {
      try {
        const ack = await request<ConsoleSubscribeAck>("console.subscribe", sel);
        if (!ack.ok) {
          setError(`${ack.error.error_code}: ${ack.error.message}`);
          return;
        }
        setError(null);
        term.reset();
        shown.text = "";
        show(ack.backlog);
      } catch (err) {
        setError((err as Error).message);
      }
    };
    void subscribe();
    const offReconnect = onReconnect(() => void subscribe());

    // Typing: one write in flight; what is typed meanwhile waits here and goes next, in order.
    let pending = "";
    let sending = false;
    const pump = async (): Promise<void> => {
      if (sending || pending === "") return;
      sending = true;
      const data = pending.slice(0, CONSOLE_WRITE_MAX_BYTES);
      pending = pending.slice(data.length);
      const token = leaseRef.current ? tokenFor(leaseRef.current) : undefined;
      try {
        const ack = await request<ConsoleWriteAck>("console.write", { ...sel, data, ...(token ? { lease_token: token } : {}) });
        shown.writes++;
        if (!ack.ok) {
          setNotice(
            ack.error.error_code === "lease_required" ? `The device is leased: ${ack.error.message} Take or use a lease above to type.` : `${ack.error.error_code}: ${ack.error.message}`,
          );
          pending = "";
        } else setNotice(null);
      } catch (err) {
        setNotice((err as Error).message);
      } finally {
        sending = false;
        void pump();
      }
    };
    const typed = term.onData((data) => {
      if (!can("operator")) {
        setNotice(whyNot("operator"));
        return;
      }
      // Bounded like everything else: a paste of megabytes is cut, and said so.
      if (pending.length + data.length > CONSOLE_WRITE_MAX_BYTES * 4) {
        setNotice(`Typed faster than the device takes it; dropped ${data.length} characters.`);
        return;
      }
      pending += data;
      void pump();
    });

    return () => {
      typed.dispose();
      offReconnect();
      socket?.off("console.data", onData);
      void request("console.unsubscribe", sel).catch(() => undefined);
      resize.disconnect();
      term.dispose();
    };
  }, [props.host, props.device, props.resource]);

  return (
    <div class="console">
      <div class="term" ref={box} data-testid="terminal" />
      {can("operator") ? <p class="muted small">Click the terminal and type: keys go to the device ({props.resource}).</p> : <p class="note">Read-only: {whyNot("operator")}</p>}
      <ErrorLine text={error} />
      <ErrorLine text={notice} />
    </div>
  );
}
