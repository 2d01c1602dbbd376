import { FINISHED_RUN_STATUSES, type CampaignRecord, type RunRecord, type RunStatus, type RunSummary, type StepResult, type TestCaseRecord } from "@labrig/shared";
import { useEffect, useState } from "preact/hooks";
import { api, blobOf, blobUrl, errorText } from "../api.js";
import { onLive, onReconnect } from "../live.js";
import { href } from "../router.js";
import { Badge, ErrorLine, Guarded, When, ms, tone } from "../ui.js";
import { GoalIterations } from "./plans.js";

const RUN_EVENTS = ["run.started", "test.started", "test.finished", "step.finished", "run.finished"] as const;

/** Re-runs `load` on every run event (optionally only those of one run) and after a reconnect. */
function useRunEvents(load: () => void, runId?: string): void {
  useEffect(() => {
    load();
    const offs = RUN_EVENTS.map((name) => onLive(name, (e) => (runId === undefined || e.run_id === runId ? load() : undefined)));
    offs.push(onReconnect(load));
    return () => offs.forEach((off) => off());
  }, [runId]);
}

export function RunsPage() {
  const [testcases, setTestcases] = useState<TestCaseRecord[]>([]);
  const [campaigns, setCampaigns] = useState<CampaignRecord[]>([]);
  const [runs, setRuns] = useState<RunSummary[]>([]);
  const [error, setError] = useState<string | null>(null);
  const load = (): void => {
    Promise.all([
      api<{ testcases: TestCaseRecord[] }>("GET", "/api/testcases"),
      api<{ campaigns: CampaignRecord[] }>("GET", "/api/campaigns"),
      api<{ runs: RunSummary[] }>("GET", "/api/runs?limit=30"),
    ]).then(
      ([t, c, r]) => {
        setTestcases(t.testcases);
        setCampaigns(c.campaigns);
        setRuns(r.runs);
      },
      (err: unknown) => setError(errorText(err)),
    );
  };
  useRunEvents(load);
  const start = (path: string) => () =>
    void api<{ id: string }>("POST", path, path.startsWith("/api/testcases") ? {} : undefined).then(
      (r) => (location.hash = href({ page: "run", id: r.id })),
      (err: unknown) => setError(errorText(err)),
    );
  return (
    <section>
      <h1>Runs</h1>
      <ErrorLine text={error} />
      <h2>Campaigns</h2>
      {campaigns.length === 0 ? <p class="muted">No campaigns. Create one with POST /api/campaigns (see the README).</p> : null}
      <table class="list" data-testid="campaigns">
        <tbody>
          {campaigns.map((c) => (
            <tr>
              <td><b>{c.name}</b></td>
              <td class="muted">{c.testcases.length} test(s) · parallelism {c.parallelism} · retries {c.retries}</td>
              <td>{c.schedule ? <>cron <code>{c.schedule.cron}</code> ({c.schedule.timezone}) · next <When at={c.next_run_at} /></> : <span class="muted">no schedule</span>}</td>
              <td><Guarded role="operator" kind="primary" onClick={start(`/api/campaigns/${encodeURIComponent(c.id)}/runs`)} testid={`run-campaign-${c.name}`}>Run now</Guarded></td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Test cases</h2>
      <table class="list">
        <tbody>
          {testcases.map((t) => (
            <tr>
              <td><b>{t.name}</b></td>
              <td class="muted">{t.setup.length + t.steps.length + t.teardown.length} steps {t.tags.map((tag) => <code>{tag}</code>)}</td>
              <td><Guarded role="operator" onClick={start(`/api/testcases/${encodeURIComponent(t.id)}/runs`)}>Run</Guarded></td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Recent runs</h2>
      <table class="list" data-testid="runs">
        <tbody>
          {runs.map((r) => (
            <tr>
              <td><a href={href({ page: "run", id: r.id })}>{r.name}</a></td>
              <td><Badge tone={tone(r.status)}>{r.status}</Badge></td>
              <td class="muted">{r.counts.passed}/{r.counts.tests} passed · {r.trigger}</td>
              <td><When at={r.created_at} /></td>
              <td>{ms(r.duration_ms)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function StepRow(props: { runId: string; step: StepResult }) {
  const s = props.step;
  const [text, setText] = useState<string | null>(null);
  const transcript = s.artifacts.find((a) => a.kind === "transcript" && !a.deleted);
  const iterations = (s.result as { iterations?: { plan_id: string }[] } | null)?.iterations;
  const show = async (): Promise<void> => {
    if (text !== null) return setText(null);
    setText(await (await blobOf(`/api/runs/${encodeURIComponent(props.runId)}/artifacts/${encodeURIComponent(transcript?.name ?? "")}`)).text());
  };
  return (
    <>
      <tr>
        <td class="muted">{s.phase}</td>
        <td><code>{s.name}</code> <span class="muted">{s.action}</span></td>
        <td><Badge tone={tone(s.status)}>{s.status}</Badge></td>
        <td>{ms(s.duration_ms)}</td>
        <td class="muted small">{s.message ?? ""}</td>
        <td>
          {transcript ? <button type="button" class="link" onClick={() => void show()}>{text === null ? "transcript" : "hide"}</button> : null}
          {s.artifacts.filter((a) => a.kind !== "transcript" && !a.deleted).map((a) => (
            <button type="button" class="link" onClick={() => void blobUrl(`/api/runs/${encodeURIComponent(props.runId)}/artifacts/${encodeURIComponent(a.name)}`).then((b) => window.open(b.url, "_blank"))}>{a.kind}</button>
          ))}
        </td>
      </tr>
      {text !== null ? <tr><td colSpan={6}><pre class="transcript">{text}</pre></td></tr> : null}
      {iterations && iterations.length > 0 ? <tr><td colSpan={6}><GoalIterations planIds={iterations.map((i) => i.plan_id)} /></td></tr> : null}
    </>
  );
}

/** One run, live: its tests and their attempts, every step with timing and transcript, JUnit and cancel. */
export function RunPage(props: { id: string }) {
  const [run, setRun] = useState<RunRecord | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [junitView, setJunitView] = useState<{ url: string; text: string } | null>(null);
  const load = (): void => {
    api<RunRecord>("GET", `/api/runs/${encodeURIComponent(props.id)}`).then(setRun, (err: unknown) => setError(errorText(err)));
  };
  useRunEvents(load, props.id);
  const finished = run !== null && FINISHED_RUN_STATUSES.includes(run.status as RunStatus);
  const junit = async (): Promise<void> => {
    try {
      if (junitView) URL.revokeObjectURL(junitView.url);
      const b = await blobUrl(`/api/runs/${encodeURIComponent(props.id)}/junit.xml`);
      setJunitView({ url: b.url, text: await b.blob.text() });
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <section data-testid="run-page">
      <p><a href={href({ page: "runs" })}>← Runs</a></p>
      <ErrorLine text={error} />
      {run === null ? <p class="muted">Loading…</p> : (
        <>
          <h1>
            {run.name} <Badge tone={tone(run.status)} testid="run-status">{run.status}</Badge>
          </h1>
          <p class="muted">
            {run.counts.passed}/{run.counts.tests} passed, {run.counts.failed} failed, {run.counts.error} errors · started <When at={run.started_at} /> · took {ms(run.duration_ms)} · by {run.requested_by ?? run.trigger}
            {run.reason ? ` · ${run.reason}` : ""}
          </p>
          <div class="row">
            <button type="button" onClick={() => void junit()} data-testid="junit">JUnit XML</button>
            {!finished ? <Guarded role="operator" kind="danger" onClick={() => void api("POST", `/api/runs/${encodeURIComponent(props.id)}/cancel`).catch((err: unknown) => setError(errorText(err)))}>Cancel run</Guarded> : null}
          </div>
          {junitView ? (
            <div class="junit">
              <a href={junitView.url} download={`run-${props.id}.xml`} data-testid="junit-download">Download JUnit XML</a>
              <pre class="transcript" data-testid="junit-xml">{junitView.text}</pre>
            </div>
          ) : null}
          {run.tests.map((t) => (
            <div class="test" data-testid={`test-${t.name}`}>
              <h3>
                {t.name} <span class="muted">attempt {t.attempt}{t.final ? "" : " (retried)"}</span> <Badge tone={tone(t.status)}>{t.status}</Badge>{" "}
                <span class="muted small">{t.host ? `${t.host}/${t.device}` : "waiting for a device"} · {ms(t.duration_ms)}</span>
              </h3>
              {t.message ? <p class="note">{t.message}</p> : null}
              <table class="list steps">
                <tbody>
                  {t.steps.map((s) => <StepRow runId={run.id} step={s} />)}
                </tbody>
              </table>
            </div>
          ))}
        </>
      )}
    </section>
  );
}
