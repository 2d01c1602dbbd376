import { ACTION_NAMES, DASHBOARD_TOPICS, type PlanRecord } from "@labrig/shared";
import { useEffect, useState } from "preact/hooks";
import { failureOf, runAction } from "../actions.js";
import { api, blobUrl, errorText } from "../api.js";
import { hosts, onLive, request } from "../live.js";
import { session } from "../session.js";
import { Badge, ErrorLine, Guarded, When, tone } from "../ui.js";

/** The frame a plan was made from (fetched with the credential, shown from an object URL). */
function PlanFrame(props: { id: string; hasFrame: boolean }) {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    if (!props.hasFrame) return;
    let made: string | null = null;
    blobUrl(`/api/plans/${encodeURIComponent(props.id)}/frame`).then(
      (b) => setUrl((made = b.url)),
      () => setUrl(null),
    );
    return () => {
      if (made) URL.revokeObjectURL(made);
    };
  }, [props.id, props.hasFrame]);
  return url ? <img class="frame" src={url} alt="the frame the model saw" data-testid="plan-frame" /> : <p class="muted">{props.hasFrame ? "loading frame…" : "no frame"}</p>;
}

function PlanView(props: { plan: PlanRecord }) {
  const p = props.plan;
  const [ran, setRan] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const execute = async (): Promise<void> => {
    const out: string[] = [];
    for (const a of p.actions) {
      try {
        const record = await runAction(p.host, p.device, a.action, a.params, a.resource);
        out.push(`${a.action}: ${failureOf(record) ?? "succeeded"}`);
      } catch (err) {
        out.push(`${a.action}: ${errorText(err)}`);
        break;
      }
      setRan([...out]);
    }
    setRan(out);
  };
  return (
    <div class="plan" data-testid="plan-view">
      <h3>
        {p.instruction} <Badge tone={tone(p.status)}>{p.status}</Badge> <span class="muted small">{p.host}/{p.device} · {p.model} · {Math.round(p.latency_ms)} ms · <When at={p.created_at} /></span>
      </h3>
      <div class="plan-body">
        <PlanFrame id={p.id} hasFrame={p.frame !== null} />
        <div>
          <p><b>Saw:</b> {p.observation}</p>
          {p.reasoning ? <p class="muted">{p.reasoning}</p> : null}
          <ol data-testid="plan-actions">
            {p.actions.map((a) => (
              <li><code>{a.action}</code> {a.resource ? <span class="muted">{a.resource}</span> : null} <code>{JSON.stringify(a.params)}</code></li>
            ))}
          </ol>
          {p.error ? <p class="error">{p.error.error_code}: {p.error.message}</p> : null}
          {p.executed ? <p class="muted">Executed: {p.executed.map((e) => String(e.status ?? "")).join(", ")}</p> : null}
          {p.status === "planned" && p.actions.length > 0 ? <Guarded role="operator" kind="primary" onClick={() => void execute()}>Execute these actions</Guarded> : null}
          {ran.map((r) => <p class="small">{r}</p>)}
          <ErrorLine text={error} />
        </div>
      </div>
    </div>
  );
}

/** The iterations of an ai.goal step, frame by frame. */
export function GoalIterations(props: { planIds: string[] }) {
  const [i, setI] = useState(0);
  const [plan, setPlan] = useState<PlanRecord | null>(null);
  const id = props.planIds[i];
  useEffect(() => {
    if (id) api<PlanRecord>("GET", `/api/plans/${encodeURIComponent(id)}`).then(setPlan, () => setPlan(null));
  }, [id]);
  return (
    <div class="iterations" data-testid="goal-iterations">
      <div class="row">
        <button type="button" disabled={i === 0} onClick={() => setI(i - 1)}>◀</button>
        <span>iteration {i + 1} / {props.planIds.length}</span>
        <button type="button" disabled={i >= props.planIds.length - 1} onClick={() => setI(i + 1)}>▶</button>
      </div>
      {plan ? <PlanView plan={plan} /> : null}
    </div>
  );
}

export function PlansPage() {
  const devices = hosts.value.flatMap((h) => h.devices.filter((d) => d.resources.some((r) => r.kind === "video")).map((d) => `${h.id}/${d.id}`));
  const [target, setTarget] = useState(devices[0] ?? "");
  const [instruction, setInstruction] = useState("");
  const [execute, setExecute] = useState(false);
  const [allow, setAllow] = useState<string[]>(["serial.write", "wait"]);
  const [streaming, setStreaming] = useState<{ id: string; text: string } | null>(null);
  const [plans, setPlans] = useState<PlanRecord[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const load = (): void => void api<{ plans: PlanRecord[] }>("GET", "/api/plans?limit=10").then((r) => setPlans(r.plans), (err: unknown) => setError(errorText(err)));
  useEffect(() => {
    load();
    const offs = [
      onLive("plan.finished", () => load()),
      onLive("plan.partial", (e) => setStreaming((s) => (s && s.id === e.id ? { id: e.id, text: e.text } : s))),
      onLive("plan.started", (e) => {
        // Partial text goes only to sockets subscribed to the plan: subscribe to this one, keeping every topic.
        if (`${e.host}/${e.device}` !== mine.target || e.instruction !== mine.instruction) return;
        setStreaming({ id: e.id, text: "" });
        void request("subscribe", { topics: [...DASHBOARD_TOPICS], plans: [e.id] });
      }),
    ];
    return () => offs.forEach((off) => off());
  }, []);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const [host, device] = (target || devices[0] || "").split("/");
    mine.target = `${host}/${device}`;
    mine.instruction = instruction;
    setBusy(true);
    setError(null);
    setStreaming(null);
    try {
      await api<PlanRecord>("POST", "/api/plans", { instruction, host, device, execute, allow });
      load();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section>
      <h1>Plans</h1>
      <form class="plan-form" onSubmit={(e) => void submit(e)}>
        <label>Device
          <select value={target} onChange={(e) => setTarget((e.target as HTMLSelectElement).value)} data-testid="plan-device">
            {devices.map((d) => <option value={d}>{d}</option>)}
          </select>
        </label>
        <label>Instruction
          <textarea rows={2} value={instruction} onInput={(e) => setInstruction((e.target as HTMLTextAreaElement).value)} required data-testid="plan-instruction" placeholder="Log in as root" />
        </label>
        <fieldset>
          <legend>Actions the plan may use</legend>
          {ACTION_NAMES.map((a) => (
            <label class="check"><input type="checkbox" checked={allow.includes(a)} onChange={(e) => setAllow((e.target as HTMLInputElement).checked ? [...allow, a] : allow.filter((x) => x !== a))} /> {a}</label>
          ))}
        </fieldset>
        <label class="check"><input type="checkbox" checked={execute} onChange={(e) => setExecute((e.target as HTMLInputElement).checked)} /> execute the plan at once</label>
        <Guarded role="operator" kind="primary" busy={busy} disabledReason={instruction.trim() === "" || devices.length === 0 ? "Pick a device with video and write an instruction." : null} onClick={() => void submit(new Event("submit"))} testid="plan-submit">Plan</Guarded>
        <span class="muted small"> as {session.value?.name}</span>
      </form>
      <ErrorLine text={error} />
      {streaming ? (
        <div class="streaming">
          <h3>Model answer {busy ? "(streaming…)" : ""}</h3>
          <pre data-testid="plan-stream">{streaming.text}</pre>
        </div>
      ) : null}
      <h2>Recent plans</h2>
      {plans.map((p) => <PlanView plan={p} />)}
    </section>
  );
}

/** The instruction and device of the plan this page asked for last, to recognise its plan.started. */
const mine = { target: "", instruction: "" };
