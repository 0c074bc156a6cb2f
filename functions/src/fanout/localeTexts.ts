// The texts this backend writes into a notification itself (the placeholders for messages without
// text, "message recalled"), per recipient locale. The app's own texts (Title, Desc, text
// elements) are never translated: only what we make up must speak the user's language.
import * as logger from "firebase-functions/logger";
import { z } from "zod";
import { MSG_TYPES, type MsgType } from "./schemas";

export const TEXT_KEYS = [...MSG_TYPES, "default", "recalled"] as const;
export type TextKey = MsgType | "default" | "recalled";
/** Every text for one locale. */
export type Texts = Readonly<Record<TextKey, string>>;

const EN: Texts = {
  TIMTextElem: "[Message]",
  TIMCustomElem: "[Message]",
  TIMLocationElem: "[Location]",
  TIMFaceElem: "[Sticker]",
  TIMSoundElem: "[Voice]",
  TIMImageElem: "[Image]",
  TIMFileElem: "[File]",
  TIMVideoFileElem: "[Video]",
  TIMRelayElem: "[Chat history]",
  default: "[Message]",
  recalled: "This message was recalled",
};

const ZH_HANS: Texts = {
  TIMTextElem: "[消息]",
  TIMCustomElem: "[消息]",
  TIMLocationElem: "[位置]",
  TIMFaceElem: "[表情]",
  TIMSoundElem: "[语音]",
  TIMImageElem: "[图片]",
  TIMFileElem: "[文件]",
  TIMVideoFileElem: "[视频]",
  TIMRelayElem: "[聊天记录]",
  default: "[消息]",
  recalled: "此消息已被撤回",
};

const ZH_HANT: Texts = {
  TIMTextElem: "[訊息]",
  TIMCustomElem: "[訊息]",
  TIMLocationElem: "[位置]",
  TIMFaceElem: "[貼圖]",
  TIMSoundElem: "[語音]",
  TIMImageElem: "[圖片]",
  TIMFileElem: "[檔案]",
  TIMVideoFileElem: "[影片]",
  TIMRelayElem: "[聊天記錄]",
  default: "[訊息]",
  recalled: "此訊息已被收回",
};

/**
 * Built-in texts by BCP 47 tag (lower case). English is also the fallback. Chinese is keyed by
 * script and by the regions that imply one, so `zh`, `zh-CN`, `zh-Hans-SG` and `zh-TW` all match.
 */
export const BUILTIN_TEXTS: Readonly<Record<string, Texts>> = {
  en: EN,
  de: {
    TIMTextElem: "[Nachricht]",
    TIMCustomElem: "[Nachricht]",
    TIMLocationElem: "[Standort]",
    TIMFaceElem: "[Sticker]",
    TIMSoundElem: "[Sprachnachricht]",
    TIMImageElem: "[Bild]",
    TIMFileElem: "[Datei]",
    TIMVideoFileElem: "[Video]",
    TIMRelayElem: "[Chatverlauf]",
    default: "[Nachricht]",
    recalled: "Diese Nachricht wurde zurückgerufen",
  },
  fr: {
    TIMTextElem: "[Message]",
    TIMCustomElem: "[Message]",
    TIMLocationElem: "[Position]",
    TIMFaceElem: "[Autocollant]",
    TIMSoundElem: "[Message vocal]",
    TIMImageElem: "[Image]",
    TIMFileElem: "[Fichier]",
    TIMVideoFileElem: "[Vidéo]",
    TIMRelayElem: "[Historique de discussion]",
    default: "[Message]",
    recalled: "Ce message a été retiré",
  },
  es: {
    TIMTextElem: "[Mensaje]",
    TIMCustomElem: "[Mensaje]",
    TIMLocationElem: "[Ubicación]",
    TIMFaceElem: "[Sticker]",
    TIMSoundElem: "[Mensaje de voz]",
    TIMImageElem: "[Imagen]",
    TIMFileElem: "[Archivo]",
    TIMVideoFileElem: "[Vídeo]",
    TIMRelayElem: "[Historial de chat]",
    default: "[Mensaje]",
    recalled: "Se retiró este mensaje",
  },
  ja: {
    TIMTextElem: "[メッセージ]",
    TIMCustomElem: "[メッセージ]",
    TIMLocationElem: "[位置情報]",
    TIMFaceElem: "[スタンプ]",
    TIMSoundElem: "[ボイスメッセージ]",
    TIMImageElem: "[画像]",
    TIMFileElem: "[ファイル]",
    TIMVideoFileElem: "[動画]",
    TIMRelayElem: "[チャット履歴]",
    default: "[メッセージ]",
    recalled: "メッセージの送信が取り消されました",
  },
  zh: ZH_HANS,
  "zh-hans": ZH_HANS,
  "zh-cn": ZH_HANS,
  "zh-sg": ZH_HANS,
  "zh-hant": ZH_HANT,
  "zh-tw": ZH_HANT,
  "zh-hk": ZH_HANT,
  "zh-mo": ZH_HANT,
};

/** The texts of each locale, after PUSH_PLACEHOLDER_TEXTS. */
export interface LocaleTexts {
  /** For a recipient without a locale, or one no entry matches. */
  fallback: Texts;
  /** By lower-case BCP 47 tag. */
  byLocale: ReadonlyMap<string, Texts>;
}

export const DEFAULT_LOCALE_TEXTS: LocaleTexts = { fallback: EN, byLocale: new Map(Object.entries(BUILTIN_TEXTS)) };

const PartialTextsSchema = z.partialRecord(z.enum(TEXT_KEYS), z.string().min(1).max(200));
/** A locale tag as a key of PUSH_PLACEHOLDER_TEXTS' per-locale form, or `default` for the fallback. */
const LocaleKeySchema = z.string().refine((tag) => tag === "default" || canonicalTag(tag) !== undefined, "a BCP 47 language tag or \"default\"");
/**
 * PUSH_PLACEHOLDER_TEXTS in either form:
 *  - flat, as before locales existed: `{"TIMImageElem": "[Photo]"}` overrides the fallback texts;
 *  - per locale: `{"default": {...}, "de": {"TIMImageElem": "[Foto]"}, "it": {...}}`, each merged
 *    over the built-in texts its lookup finds (`de-AT` over `de`; the fallback for `it`).
 */
const OverridesSchema = z.union([PartialTextsSchema, z.record(LocaleKeySchema, PartialTextsSchema)]);

/** The canonical lower-case form of a BCP 47 tag, or undefined when it is not one. */
export function canonicalTag(tag: string): string | undefined {
  try {
    const [canonical] = Intl.getCanonicalLocales(tag);
    return canonical?.toLowerCase();
  } catch {
    return undefined;
  }
}

let cached: { raw: string; value: LocaleTexts } | undefined;

/** PUSH_PLACEHOLDER_TEXTS parsed. A bad value must not stop pushes: it is logged as an error (operators see it) and the built-in texts are used. */
export function localeTextsFrom(raw: string): LocaleTexts {
  if (cached?.raw === raw) return cached.value;
  let value = DEFAULT_LOCALE_TEXTS;
  if (raw.trim() !== "") {
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      json = undefined;
    }
    const parsed = OverridesSchema.safeParse(json);
    if (parsed.success) value = withOverrides(parsed.data);
    else {
      logger.error("PUSH_PLACEHOLDER_TEXTS is neither a JSON object of text key -> text nor one of locale -> {text key -> text}; using the built-in texts", {
        keys: TEXT_KEYS,
      });
    }
  }
  cached = { raw, value };
  return value;
}

function withOverrides(overrides: z.infer<typeof OverridesSchema>): LocaleTexts {
  const values = Object.values(overrides);
  const flat = values.every((v) => typeof v === "string");
  if (flat) return { fallback: { ...EN, ...(overrides as Partial<Texts>) }, byLocale: DEFAULT_LOCALE_TEXTS.byLocale };
  const perLocale = overrides as Record<string, Partial<Texts>>;
  const fallback: Texts = { ...EN, ...perLocale.default };
  const byLocale = new Map(DEFAULT_LOCALE_TEXTS.byLocale);
  for (const [tag, texts] of Object.entries(perLocale)) {
    if (tag === "default") continue;
    const key = canonicalTag(tag);
    if (key === undefined) continue;
    // de-AT's overrides fill in from de's built-in texts, as its lookup would.
    byLocale.set(key, { ...textsFor({ fallback, byLocale: DEFAULT_LOCALE_TEXTS.byLocale }, key).texts, ...texts });
  }
  return { fallback, byLocale };
}

/**
 * The texts for a recipient's locale by BCP 47 lookup (RFC 4647 §3.4): the whole tag, then the tag
 * with its last subtag removed, and so on (`de-AT` → `de`), then the fallback. `locale` is the
 * tag that matched, or `default`: a batch builds one message per locale in use, keyed by it.
 */
export function textsFor(table: LocaleTexts, locale: string | null | undefined): { locale: string; texts: Texts } {
  const tag = locale ? canonicalTag(locale) : undefined;
  if (tag !== undefined) {
    const parts = tag.split("-");
    while (parts.length > 0) {
      const candidate = parts.join("-");
      const texts = table.byLocale.get(candidate);
      if (texts) return { locale: candidate, texts };
      parts.pop();
      // A lone single-letter subtag (the "x" of a private use part) never stands alone.
      if (parts.length > 0 && parts[parts.length - 1]?.length === 1) parts.pop();
    }
  }
  return { locale: "default", texts: table.fallback };
}
