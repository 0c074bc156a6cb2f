// The texts this backend writes itself, per recipient locale: BCP 47 lookup with fallback, and
// PUSH_PLACEHOLDER_TEXTS in its flat (pre-locale) and per-locale forms.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BUILTIN_TEXTS, DEFAULT_LOCALE_TEXTS, TEXT_KEYS, canonicalTag, localeTextsFrom, textsFor } from "../../functions/src/fanout/localeTexts.ts";

describe("locale texts", () => {
  it("every built-in locale has every text", () => {
    for (const [tag, texts] of Object.entries(BUILTIN_TEXTS)) {
      for (const key of TEXT_KEYS) assert.ok(texts[key].length > 0, `${tag} ${key}`);
    }
  });

  it("BCP 47 lookup: the whole tag, then shorter, then the fallback", () => {
    const t = DEFAULT_LOCALE_TEXTS;
    assert.deepEqual(textsFor(t, "de-AT"), { locale: "de", texts: BUILTIN_TEXTS.de });
    assert.equal(textsFor(t, "DE").texts.TIMImageElem, "[Bild]");
    assert.equal(textsFor(t, "zh-Hans-SG").texts.recalled, BUILTIN_TEXTS["zh-cn"]?.recalled);
    assert.equal(textsFor(t, "zh-TW").texts.TIMImageElem, "[圖片]");
    assert.equal(textsFor(t, "zh").texts.TIMImageElem, "[图片]");
    assert.equal(textsFor(t, "ja-JP").texts.recalled, "メッセージの送信が取り消されました");
    assert.deepEqual(textsFor(t, "it-IT"), { locale: "default", texts: t.fallback });
    assert.deepEqual(textsFor(t, undefined), { locale: "default", texts: t.fallback });
    assert.deepEqual(textsFor(t, "not a tag!"), { locale: "default", texts: t.fallback });
    assert.equal(textsFor(t, "de-x-private").locale, "de");
  });

  it("the flat form overrides the fallback, as before locales", () => {
    const t = localeTextsFrom('{"TIMImageElem":"[Photo]"}');
    assert.equal(t.fallback.TIMImageElem, "[Photo]");
    assert.equal(t.fallback.TIMSoundElem, "[Voice]");
    assert.equal(textsFor(t, "de").texts.TIMImageElem, "[Bild]");
  });

  it("the per-locale form merges over each locale's built-in texts, or the fallback", () => {
    const t = localeTextsFrom('{"default":{"recalled":"Recalled"},"de-AT":{"TIMImageElem":"[Foto]"},"it":{"TIMImageElem":"[Immagine]"}}');
    assert.equal(t.fallback.recalled, "Recalled");
    assert.equal(textsFor(t, "de-AT").texts.TIMImageElem, "[Foto]");
    assert.equal(textsFor(t, "de-AT").texts.TIMSoundElem, "[Sprachnachricht]");
    assert.equal(textsFor(t, "de-DE").texts.TIMImageElem, "[Bild]");
    assert.equal(textsFor(t, "it").texts.TIMImageElem, "[Immagine]");
    assert.equal(textsFor(t, "it").texts.recalled, "Recalled");
  });

  it("a bad value falls back to the built-in texts", () => {
    for (const raw of ["not json", '{"TIMImageElem": 3}', '{"de": {"TIMImageElem": ""}}', '{"not a tag!": {}}', "[]"]) {
      assert.deepEqual(localeTextsFrom(raw), DEFAULT_LOCALE_TEXTS, raw);
    }
    assert.equal(canonicalTag("en-us"), "en-us");
    assert.equal(canonicalTag("??"), undefined);
  });
});
