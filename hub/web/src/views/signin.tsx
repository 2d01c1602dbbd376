import { useState } from "preact/hooks";
import { errorText } from "../api.js";
import { signIn, signedOutReason } from "../session.js";
import { ErrorLine } from "../ui.js";

export function SignIn() {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(token.trim());
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="signin">
      <form onSubmit={(e) => void submit(e)}>
        <h1>labrig</h1>
        <p>Sign in with an API key (<code>lrk_…</code>, printed by <code>npm start</code>) or a JWT. It is kept for this tab only.</p>
        {signedOutReason.value ? <p class="note">Signed out: {signedOutReason.value}</p> : null}
        <label>
          API key or JWT
          <input type="password" name="credential" autocomplete="off" value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} required />
        </label>
        <button type="submit" class="primary" disabled={busy || token.trim() === ""}>
          Sign in
        </button>
        <ErrorLine text={error} />
      </form>
    </div>
  );
}
