// Certificates: upload the FCM service-account key (file picker or drag and drop), read the new
// certificate ID, and keep the list: rename, replace the key (same ID), delete.
import type { PublicCertificate } from "../api";
import { CallError } from "../api";
import { badge, busy, card, copyButton, errorBox, h, replace, spinner, table, time, ago } from "../dom";
import type { PageContext } from "../page";

// The server refuses larger files anyway; checked here so a wrong file (a photo) fails at once.
const MAX_FILE_BYTES = 64 * 1024;

/** FCM's or Google's refusal of a key, said as an operator needs to hear it. */
export function plainRefusal(err: unknown): string | null {
  if (!(err instanceof CallError)) return null;
  const fcm = err.fcm;
  if (err.code === "failed-precondition" && fcm?.stage === "access-token") {
    return "Google refused to issue an access token for this key: it has been deleted, rotated or disabled, or the file was edited. Generate a new private key (Firebase console → Project settings → Service accounts) and upload that file.";
  }
  if (err.code === "failed-precondition" && fcm?.stage === "validate-only-send") {
    if (fcm.httpStatus === 403 || fcm.status === "PERMISSION_DENIED") {
      return "FCM refused this key: the service account may not send messages for its project. Use the key of the Firebase Admin SDK service account, or grant this one the Firebase Cloud Messaging API Admin role.";
    }
    if (fcm.httpStatus === 404 || fcm.status === "NOT_FOUND") {
      return "FCM does not know this project: check that the key belongs to your Firebase project and that the Firebase Cloud Messaging API is enabled there.";
    }
    if (fcm.httpStatus === 401 || fcm.status === "UNAUTHENTICATED") {
      return "FCM did not accept the key's credentials: generate a new private key and upload that file.";
    }
    return "FCM refused a test send with this key: see its answer below.";
  }
  if (err.code === "invalid-argument" && err.field?.startsWith("serviceAccount")) {
    return "This file is not a Firebase service-account key. Download one from Firebase console → Project settings → Service accounts → Generate new private key.";
  }
  if (err.code === "already-exists" && err.details.override === "allowDuplicateKey") {
    const label = typeof err.details.label === "string" ? ` (“${err.details.label}”)` : "";
    return `This key is already registered as certificate ${String(err.details.certificateId)}${label}: your app can report that certificate ID. Registering it again gives the same key a second ID.`;
  }
  if (err.code === "failed-precondition" && err.field === "serviceAccount.project_id") {
    return "This key belongs to another Firebase project than the certificate's: its device tokens would all be refused. Register it as a new certificate instead.";
  }
  return null;
}

function refusalBox(err: unknown, context: string, ...actions: Array<HTMLElement | null>): HTMLElement {
  const box = errorBox(err, context);
  const plain = plainRefusal(err);
  // A key already registered: the plain sentence says it all, and the server's names an API flag
  // (allowDuplicateKey) where this page has a button.
  if (plain && err instanceof CallError && err.code === "already-exists") box.children[1]?.replaceWith(h("p", { class: "plain" }, plain));
  else if (plain) box.insertBefore(h("p", { class: "plain" }, plain), box.children[1] ?? null);
  for (const action of actions) if (action) box.append(action);
  return box;
}

/**
 * An e-mail address that wraps only between its parts (after "@", before each "."), never inside
 * a name: "firebase-adminsdk-x@" / "my-app" / ".iam" / ".gserviceaccount" / ".com".
 */
function email(address: string): HTMLElement {
  const parts = address.split(/(?<=@)|(?=\.)/);
  return h("span", { class: "email-parts" }, ...parts.flatMap((p, i) => [i ? h("wbr") : null, h("span", { class: "nowrap" }, p)]));
}

interface PickedFile {
  name: string;
  text: string;
}

/** A drop zone around a real file input: keyboard and screen readers use the input, mice may drop. */
function fileDrop(id: string, onFile: (file: PickedFile | null, problem?: string) => void): HTMLElement {
  const input = h("input", { id, type: "file", accept: ".json,application/json", class: "file-input" });
  const name = h("span", { class: "file-name" }, "No file chosen");
  const zone = h(
    "div",
    { class: "drop" },
    input,
    h("label", { for: id, class: "drop-label" }, h("span", { class: "drop-icon", "aria-hidden": "true" }), h("span", {}, h("strong", {}, "Choose the service-account JSON"), " or drop it here"), name),
  );
  const take = async (file: File | undefined) => {
    if (!file) return onFile(null);
    name.textContent = file.name;
    if (file.size > MAX_FILE_BYTES) return onFile(null, `${file.name} is ${Math.round(file.size / 1024)} KB: a service-account key file is about 2 KB. Is it the right file?`);
    onFile({ name: file.name, text: await file.text() });
  };
  input.addEventListener("change", () => void take(input.files?.[0]));
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    void take(e.dataTransfer?.files[0]);
  });
  return zone;
}

/** What the file says about itself, read locally (never the key), so the operator sees which key this is. */
function describeKeyFile(text: string): string | null {
  try {
    const json = JSON.parse(text) as Record<string, unknown>;
    if (typeof json.project_id === "string" && typeof json.client_email === "string") return `${json.client_email} · project ${json.project_id}`;
  } catch {
    /* the server says what is wrong with it */
  }
  return null;
}

function resultCard(cert: { certificateId: number; projectId: string; clientEmail: string; label: string | null }): HTMLElement {
  const id = String(cert.certificateId);
  // The callable's request as README and the CLI write it.
  const code = `setOfflinePushToken {deviceId, certificateId: ${id}, token}`;
  const kotlin = `functions.getHttpsCallable("setOfflinePushToken").call(mapOf("deviceId" to deviceId, "certificateId" to ${id}, "token" to token))`;
  return h(
    "section",
    { class: "card success", "aria-labelledby": "new-cert-title", tabindex: -1 },
    h("h2", { id: "new-cert-title" }, "Certificate registered"),
    h("p", { class: "muted" }, cert.label ? `“${cert.label}” · ` : "", email(cert.clientEmail), ` · project ${cert.projectId}`),
    h("div", { class: "big-id" }, h("span", { class: "big-id-label" }, "Certificate ID"), h("output", { class: "big-id-value", "data-testid": "certificate-id" }, id), copyButton(id, `Copy certificate ID ${id}`)),
    h("p", {}, "Your app reports each device's FCM token with this ID after login (the callable and its request):"),
    h("div", { class: "code-line" }, h("code", {}, code), copyButton(code, "Copy the line of app code")),
    h("details", {}, h("summary", {}, "Kotlin (Firebase Functions SDK)"), h("div", { class: "code-line" }, h("code", {}, kotlin), copyButton(kotlin, "Copy the Kotlin call"))),
  );
}

export async function renderCertificates(root: HTMLElement, { api }: PageContext): Promise<void> {
  const result = h("div", { class: "result-slot" });
  const listSlot = h("div", {}, spinner("Loading certificates…"));

  // --- upload ---
  let picked: PickedFile | null = null;
  const formError = h("div", { class: "form-error-slot" });
  const fileInfo = h("p", { class: "muted file-info", id: "key-file-info" });
  const label = h("input", { id: "cert-label", name: "label", type: "text", maxlength: 100, placeholder: "e.g. Chat app (Android, production)", autocomplete: "off" });
  const submit = h("button", { type: "submit", class: "primary", disabled: true }, "Register certificate");
  const drop = fileDrop("key-file", (file, problem) => {
    picked = file;
    replace(formError);
    fileInfo.textContent = problem ?? (file ? (describeKeyFile(file.text) ?? `${file.name}: checked by the server when you register it.`) : "");
    submit.disabled = !file;
  });
  const form = h(
    "form",
    { class: "stack", "aria-describedby": "upload-help" },
    drop,
    fileInfo,
    h("label", { for: "cert-label" }, "Label ", h("span", { class: "muted" }, "(optional, shown in this list)")),
    label,
    formError,
    h("div", { class: "row" }, submit),
  );
  const register = async (button: HTMLButtonElement, file: PickedFile, allowDuplicateKey: boolean) => {
    // The panel of an earlier registration goes: below a new attempt it would read as its result.
    replace(result);
    if (button === submit) replace(formError);
    await busy(button, "Checking the key with FCM…", async () => {
      try {
        const cert = await api("registerPushCertificate", { serviceAccount: file.text, ...(label.value.trim() ? { label: label.value.trim() } : {}), ...(allowDuplicateKey ? { allowDuplicateKey: true } : {}) });
        replace(formError);
        replace(result, resultCard(cert));
        (result.firstElementChild as HTMLElement | null)?.focus();
        form.reset();
        picked = null;
        fileInfo.textContent = "";
        drop.querySelector(".file-name")!.textContent = "No file chosen";
        void loadList();
      } catch (err) {
        // A key already registered: registering it again is one deliberate click away.
        const again =
          err instanceof CallError && err.code === "already-exists" && err.details.override === "allowDuplicateKey"
            ? h("button", { type: "button", class: "secondary", onclick: (e: Event) => void register(e.currentTarget as HTMLButtonElement, file, true) }, "Register again as a new certificate")
            : null;
        replace(formError, refusalBox(err, `${file.name} was not registered`, again));
      }
    });
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!picked) return;
    await register(submit, picked, false);
    submit.disabled = !picked;
  });

  // --- list ---
  const loadList = async () => {
    try {
      const { certificates } = await api("listPushCertificates", {});
      replace(listSlot, certificates.length ? certificateTable(certificates) : h("p", { class: "empty" }, "No certificate yet: upload your first key above."));
    } catch (err) {
      replace(listSlot, errorBox(err, "The list could not be loaded"), h("button", { type: "button", class: "secondary", onclick: () => void loadList() }, "Try again"));
    }
  };

  const certificateTable = (certs: PublicCertificate[]) =>
    table(
      "Push certificates",
      ["ID", "Label", "Project", "Client e-mail", "Key ID", "Created / updated", "Health", "Actions"],
      certs.map((c) => [
        h("strong", { class: "mono" }, String(c.certificateId)),
        c.label ?? h("span", { class: "muted" }, "—"),
        c.projectId,
        email(c.clientEmail),
        h("span", { class: "mono muted", title: c.privateKeyId }, `${c.privateKeyId.slice(0, 10)}…`),
        h("div", { class: "dates" }, time(c.createdAt), c.updatedAt !== c.createdAt ? h("span", { class: "muted small" }, "updated ", time(c.updatedAt)) : null),
        c.health.state === "healthy"
          ? badge("Healthy", "ok")
          : h("div", {}, badge("Refused by FCM", "bad"), h("p", { class: "small" }, c.health.reason ?? ""), c.health.since ? h("p", { class: "small muted" }, "since ", time(c.health.since, ago(c.health.since))) : null),
        h(
          "div",
          { class: "actions" },
          h("button", { type: "button", class: "secondary small", onclick: () => renameDialog(c), "aria-label": `Rename certificate ${c.certificateId}` }, "Rename"),
          // Each accessible name starts with the visible text (what a voice-control user says).
          h("button", { type: "button", class: "secondary small", onclick: () => replaceDialog(c), "aria-label": `Replace key of certificate ${c.certificateId}` }, "Replace key"),
          h("button", { type: "button", class: "danger small", onclick: () => void deleteDialog(c), "aria-label": `Delete certificate ${c.certificateId}` }, "Delete"),
        ),
      ]),
      { className: "certs" },
    );

  // --- dialogs ---
  const dialog = (title: string, ...body: (Node | null)[]): HTMLDialogElement => {
    const d = h("dialog", { "aria-labelledby": "dialog-title" }, h("h2", { id: "dialog-title" }, title), ...body);
    d.addEventListener("close", () => d.remove());
    document.body.append(d);
    d.showModal();
    return d;
  };

  const renameDialog = (c: PublicCertificate) => {
    const input = h("input", { id: "rename-label", type: "text", maxlength: 100, value: c.label ?? "" });
    const error = h("div");
    const save = h("button", { type: "submit", class: "primary" }, "Save");
    const form = h(
      "form",
      { class: "stack" },
      h("label", { for: "rename-label" }, `New label for certificate ${c.certificateId}`),
      input,
      h("p", { class: "muted small" }, "Leave empty to remove the label."),
      error,
      h("div", { class: "row end" }, h("button", { type: "button", class: "secondary", onclick: () => d.close() }, "Cancel"), save),
    );
    const d = dialog(`Rename certificate ${c.certificateId}`, form);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      await busy(save, "Saving…", async () => {
        try {
          await api("updatePushCertificate", { certificateId: c.certificateId, label: input.value.trim() || null });
          d.close();
          void loadList();
        } catch (err) {
          replace(error, errorBox(err, "Not renamed"));
        }
      });
    });
    input.select();
  };

  const replaceDialog = (c: PublicCertificate) => {
    let file: PickedFile | null = null;
    const info = h("p", { class: "muted file-info" });
    const error = h("div");
    const save = h("button", { type: "submit", class: "primary", disabled: true }, "Replace key");
    const form = h(
      "form",
      { class: "stack" },
      h("p", {}, `The new key is checked with FCM first; the certificate keeps ID ${c.certificateId}, so apps need no change. Devices' tokens stay bound.`),
      fileDrop("replace-file", (f, problem) => {
        file = f;
        info.textContent = problem ?? (f ? (describeKeyFile(f.text) ?? f.name) : "");
        save.disabled = !f;
      }),
      info,
      error,
      h("div", { class: "row end" }, h("button", { type: "button", class: "secondary", onclick: () => d.close() }, "Cancel"), save),
    );
    const d = dialog(`Replace the key of certificate ${c.certificateId}`, form);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!file) return;
      const text = file.text;
      await busy(save, "Checking the key with FCM…", async () => {
        try {
          await api("updatePushCertificate", { certificateId: c.certificateId, serviceAccount: text });
          d.close();
          void loadList();
        } catch (err) {
          replace(error, refusalBox(err, "The key was not replaced"));
        }
      });
      save.disabled = !file;
    });
  };

  const deleteDialog = async (c: PublicCertificate) => {
    const count = h("div", {}, spinner("Counting the devices that use it…"));
    const error = h("div");
    const confirm = h("button", { type: "submit", class: "danger", disabled: true }, `Delete certificate ${c.certificateId}`);
    const form = h(
      "form",
      { class: "stack" },
      count,
      error,
      h("div", { class: "row end" }, h("button", { type: "button", class: "secondary", onclick: () => d.close() }, "Cancel"), confirm),
    );
    const d = dialog(`Delete certificate ${c.certificateId}${c.label ? ` (“${c.label}”)` : ""}?`, form);
    (form.querySelector("button.secondary") as HTMLButtonElement).focus();
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      await busy(confirm, "Deleting…", async () => {
        try {
          await api("deletePushCertificate", { certificateId: c.certificateId });
          d.close();
          void loadList();
        } catch (err) {
          replace(error, errorBox(err, "Not deleted"));
        }
      });
    });
    try {
      const { boundTokens } = await api("deletePushCertificate", { certificateId: c.certificateId, dryRun: true });
      const devices = boundTokens === 1 ? "1 device token is" : `${boundTokens} device tokens are`;
      replace(
        count,
        h("p", { class: boundTokens ? "warning-text" : "" }, h("strong", { "data-testid": "bound-tokens" }, devices), " bound to it."),
        h("p", {}, boundTokens ? "Those devices get no offline push after the delete (reason: certificate-missing) until their app reports a token with another certificate ID. The ID is never reused." : "No device uses it. The ID is never reused."),
      );
      confirm.disabled = false;
    } catch (err) {
      replace(count, errorBox(err, "Could not count the devices that use it"));
    }
  };

  replace(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Certificates"), h("p", { class: "muted" }, "FCM service-account keys. Each gets a number, the certificate ID, that your app sends with each device's token.")),
    card(
      "Upload a key",
      h("p", { id: "upload-help", class: "muted" }, "In the Firebase console: Project settings → Service accounts → Generate new private key. The key is checked with FCM, stored encrypted and never shown again."),
      form,
    ),
    result,
    card("All certificates", listSlot),
  );
  await loadList();
}
