"""Reply-language decisions: explicit choice > sticky history > detection > channel hint.

langdetect alone is unreliable on short, colloquial Indonesian and Malay (it often
answers "so", "tl" or "sw", and it cannot tell Indonesian from Malay in a few words),
so a weighted word vote decides first. Indonesian and Malay share most of their
vocabulary: shared words only say "Indonesian or Malay", and Malay is chosen only on
words that are Malaysian usage (tak, nak, kat, dah, ...), since the deployment's workers
are Indonesian and Malay readers are answered in Indonesian anyway where no Malay text
exists. langdetect is consulted, restricted to the supported languages, only when no
known word is found.

`python -m bot.language` prints the decision for a new user, one line per input line.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from langdetect import DetectorFactory, LangDetectException, detect_langs

from pmi.settings import SettingsError, load_settings

logger = logging.getLogger(__name__)

_WORD = re.compile(r"[a-z]+")

# A detection must beat the conversation's language by this much probability to switch
# away from it; a single word never does, so "ok", "ya", "1" keep the language.
SWITCH_MARGIN = 0.35
# Pseudo-count added to every language: little evidence stays close to "don't know".
PRIOR = 1.0
LANGDETECT_MAX_CHARS = 300
# Weight of langdetect's restricted probabilities when no known word was found, reached
# from this many words on (langdetect is unreliable on a word or two).
LANGDETECT_WEIGHT = 2.0
LANGDETECT_FULL_WORDS = 4
# Indonesian is preferred over Malay on equal evidence (most users; Malay falls back to it).
ID_BIAS = 0.01


def _words(text: str, weight: float) -> dict[str, float]:
    return dict.fromkeys(text.split(), weight)


# Words as workers write them, incl. SMS abbreviations and Jakarta colloquial forms.
# Each word is in one table only (tests/test_language.py checks it).
ENGLISH = {
    **_words(
        """i im me my mine you your we our they them he she it its is are am was were be
        been the a an to of for and or but if so not no yes do does did dont doesnt didnt
        cant cannot can could would should will what how where when why who which this
        that these those there here have has had with about from at on in into inside by
        again still already any anyone someone something nothing every all just only very
        want need help please give take keep pay paid late get go going back home leave
        work working job wage wages employer boss agent money month months day days week
        year years sick scared afraid hit locked house friend missing police free talk
        speak person people real answer understand mean thank much lot good morning night
        evening hello hey told say said know tell send call number since until after
        before long many cost fee fees legal illegal licensed lawyer embassy insurance
        claim documents document training departure process shouting overtime contract
        extend change domestic factory worker english indonesian make made report
        complaint status check staff other noted""",
        1.0,
    ),
    # Loanwords and chat forms Indonesians mix into their own sentences: weak evidence.
    **_words(
        "hi u ur pls plz thanks thx sorry case agency urgent medical visa "
        "overstay error login admin complain salary",
        0.4,
    ),
}
INDONESIAN = _words(
    """gak ga gk nggak ngga enggak engga nda ndak tdk udah udh mau mw pengen gimana gmn
    gmna gimna gmana bgaimana bagaimana knp kok sih dong deh nih tuh aja banget bgt
    bisa bsa dikasih bilang ngomong ngerti paham liat lihat cuma cuman gitu gini
    kayak kyk kaya emang memang beneran bener sampe kalo klo kl uang kantor libur agen
    calo lapor ngadu pengaduan nanya nanyain bikin beliin pulangin dibales bales nyampe
    nyimpen ortu skrg gpp gapapa makasih mksh trims terimakasih iya istri teman polisi
    imigrasi pesangon lembur asuransi pabrik berangkat berkas sertifikat pelatihan kamu
    kalian barusan doang gue gw lu lo min mimin mbak mba mas bang pak bu bapak ibu kpn
    kapan nomer kabur besok kemarin sedikit gratis resmi ilegal soal petugas karena
    oke sip siap mantap laki sama nomor telepon dokter obat pesawat bandara toko kamar
    pengacara pemerintah perusahaan formulir pajak rekening akun capek pusing bingung
    khawatir gampang jelek sepatu celana kecelakaan darurat tendang ditendang ketemu
    cowok cewek yah loh lho wkwk tki tkw prt art bmi ngelarang""",
    1.0,
)
MALAY = {
    **_words(
        """je jer jugak awak korang kitorang takde xde tiada x tq sikit khabar petang penat
        faham cakap bercakap pegawai agensi bayaran polis saman imigresen kawan pasal
        ambik bagi bg semak aduan hantar percuma isteri mak sambung kilang ladang kos
        ringgit rm pasport nombor telefon wang mahu kerana sahaja lepas tengok balai ye
        insurans socso kwsp epf bas teksi kedai bilik camana mcm nk kt dh tak la tamat
        hospital esok rasmi lelaki teruk peguam nampak mesej sori doktor ubat pejabat
        tandas kasut kemalangan kecemasan bil akaun syarikat yuran mahkamah lokap encik
        cik puan makcik pakcik bapa beritahu bagitau bagitahu rehat sembang borak sepak
        aje ramai kelmarin selepas camni camtu apasal apahal diorang dorang kerajaan
        amah borang sijil lesen cukai seronok payah risau bimbang keliru pening""",
        1.0,
    ),
    **_words("ni tu", 0.5),
    **_words("nak kat dah camne macam", 1.5),
}
# Shared by Indonesian and Malay: evidence for the pair, not for either one.
SHARED = _words(
    """saya sy aku apa berapa brp tolong tlg bantu bantuan boleh blh bole ada belum blm
    sudah sdh gaji upah majikan kerja bekerja pekerja balik pulang kampung terima
    selamat pagi malam siang dengan dgn untuk utk yang yg juga jg lagi sakit takut tapi
    tp dan atau ke di dari dr ini itu kenapa bila mana dmn dimana siapa baik minta bayar
    duit kena ambil pergi hilang hubungi masih kami kita dia mereka kontrak habis bulan
    tahun thn hari minggu jam pukul tiket rumah tinggal makan tidur orang anak adik
    kakak kak suami keluarga bos tanya cara daftar dokumen biaya jenazah sekali tiap
    setiap dapat dpt tahan lama lambat sampai betul ya potong dipotong kbri kjri pmi
    bpjs ditahan disita dikurung dipukul ditangkap tangkap kurung pukul sangat lah pun
    tentang masuk keluar luar negeri sekarang nanti semua banyak byk bnyk lebih kurang
    lari pindah ganti tukar cuti hak berhak perempuan hamil mati meninggal beli cukup
    laporan jd jadi hp krn kasih terus trus tadi saja kan bukan tidak hendak sungguh
    semalam lusa kini sebelum sejak baru begini begitu mengapa sebab sbb kepada
    pada daripada oleh dekat sini situ sana harga kapal kebun pasar jalan motor dapur
    penjara pembantu surat ijazah simpanan letih lapar senang susah mudah cepat besar
    kecil jahat bagus cantik sedih tau tahu dengar datang jumpa cari kirim simpan buat
    guna pakai berhenti tunggu baca tulis gaduh marah tampar wa hehe haha""",
    1.0,
)
# Malay yes/no question particle: "boleh ke?", "sah ke tak".
_MALAY_QUESTION = re.compile(r"\bke(?:r)?\s*(?:\?|$|\s+(?:tak|x)\b)")


@dataclass(frozen=True)
class Detection:
    """Probabilities over the supported languages (close to uniform on little evidence)."""

    probabilities: dict[str, float]

    @property
    def best(self) -> str:
        return max(self.probabilities, key=lambda k: self.probabilities[k])

    def margin(self, other: str | None = None) -> float:
        """How much more likely the best language is than `other` (or the runner-up)."""
        ranked = sorted(self.probabilities.values(), reverse=True)
        if other in self.probabilities:
            return ranked[0] - self.probabilities[other]  # type: ignore[index]
        return ranked[0] - (ranked[1] if len(ranked) > 1 else 0.0)


def _affix_family(word: str) -> bool:
    """Indonesian/Malay morphology on words no list knows (-nya, -kan, ng-/ny- verbs)."""
    return (
        (word.endswith("nya") and len(word) > 4)
        or (word.endswith("kan") and len(word) > 5)
        or (word.startswith(("ng", "ny")) and len(word) > 3)
    )


def _lexical_scores(text: str) -> tuple[dict[str, float], float]:
    """Distinct evidence per language, and evidence shared by Indonesian and Malay."""
    scores = {"en": 0.0, "id": 0.0, "ms": 0.0}
    shared = 0.0
    scores["ms"] += len(_MALAY_QUESTION.findall(text))
    for w in _WORD.findall(text):
        if w in INDONESIAN:
            scores["id"] += INDONESIAN[w]
        elif w in MALAY:
            scores["ms"] += MALAY[w]
        elif w in SHARED:
            shared += SHARED[w]
        elif w in ENGLISH:
            scores["en"] += ENGLISH[w]
        elif _affix_family(w):
            shared += 0.5
    return scores, shared


def _langdetect_scores(text: str, supported: tuple[str, ...]) -> tuple[dict[str, float], float]:
    """langdetect restricted to the supported languages; Indonesian/Malay count as shared."""
    DetectorFactory.seed = 0  # langdetect is random by default; make it repeatable
    try:
        # The first characters say the language as well as the whole text, and langdetect's
        # time grows with the length: a long message would block the event loop.
        guesses = detect_langs(text[:LANGDETECT_MAX_CHARS])
    except LangDetectException:
        return {}, 0.0
    probs = {g.lang: g.prob for g in guesses if g.lang in supported}
    total = sum(probs.values())
    if total <= 0:
        return {}, 0.0
    weight = LANGDETECT_WEIGHT * min(1.0, len(_WORD.findall(text)) / LANGDETECT_FULL_WORDS)
    shared = (probs.get("id", 0.0) + probs.get("ms", 0.0)) / total
    return {"en": weight * probs.get("en", 0.0) / total}, weight * shared


def warm_up() -> None:
    """Load langdetect's profiles now (about 0.4 s the first time), not on a worker's message."""
    _langdetect_scores("warm up the language profiles", ("id", "en"))


def detect_scores(text: str, supported: Iterable[str] = ("id", "en", "ms")) -> Detection | None:
    """Probabilities over the supported languages, or None when the text says nothing."""
    supported = tuple(supported)
    text = text.lower()
    if not _WORD.search(text):
        return None
    scores, shared = _lexical_scores(text)
    if sum(scores.values()) + shared == 0:
        scores, shared = _langdetect_scores(text, supported)
        if sum(scores.values()) + shared == 0:
            return None
    pair = [lang for lang in ("id", "ms") if lang in supported]
    raw = {lang: scores.get(lang, 0.0) for lang in supported}
    for lang in pair:
        raw[lang] += shared / len(pair)
    if "id" in raw:
        raw["id"] += ID_BIAS
    total = sum(raw.values()) + PRIOR * len(raw)
    return Detection({lang: (raw[lang] + PRIOR) / total for lang in raw})


def detect(text: str, supported: Iterable[str] = ("id", "en", "ms")) -> tuple[str | None, float]:
    """Return (language, confidence in 0..1) or (None, 0) when the text says too little.

    The confidence is the best language's lead in probability over the runner-up.
    """
    detection = detect_scores(text, supported)
    if detection is None:
        return None, 0.0
    return detection.best, detection.margin()


def decide_language(
    text: str,
    *,
    chosen: str | None,
    sticky: str | None,
    hint: str | None,
    default: str,
    supported: Iterable[str],
) -> str:
    """Pick the reply language for one message.

    An explicit choice always wins. Otherwise a confident detection on this message
    switches the language; a weak one (short or ambiguous text) keeps the language of
    the conversation so far, and in a new conversation the channel's hint; a weak
    detection still beats the bare default.
    """
    supported = tuple(supported)
    if chosen in supported:
        return chosen  # type: ignore[return-value]
    detection = detect_scores(text, supported)
    known = sticky if sticky in supported else (hint if hint in supported else None)
    if detection is not None:
        if known is None or detection.best == known:
            return detection.best
        if detection.margin(known) >= SWITCH_MARGIN:
            return detection.best
    if known is not None:
        return known
    return default if default in supported else supported[0]


def decide_for_new_user(text: str, *, default: str, supported: Iterable[str]) -> str:
    """The decision for someone with no history, no choice and no channel hint."""
    return decide_language(
        text, chosen=None, sticky=None, hint=None, default=default, supported=supported
    )


def language_settings() -> tuple[str, tuple[str, ...]]:
    """Default and supported languages from config.yml (no secrets or database needed)."""
    try:
        language = load_settings().language
    except SettingsError as exc:
        logger.warning("settings unreadable, using id/en/ms: %s", exc)
        return "id", ("id", "en", "ms")
    return language.default, tuple(language.supported)


def main() -> int:
    """Read one message per line on stdin; print one ISO 639-1 code per line."""
    default, supported = language_settings()
    out = sys.stdout
    for line in sys.stdin:
        text = line.rstrip("\r\n")
        out.write(decide_for_new_user(text, default=default, supported=supported) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
