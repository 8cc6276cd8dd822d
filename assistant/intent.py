"""Reading what a query asks for: a persona by name, a persona by need, or the notes.

Only cheap text rules live here (no model): request phrases in several languages, a
small cross-lingual word list for role names, question form, prompt-injection and
garbage detection. The retriever combines them with embedding scores.
"""

from __future__ import annotations

import re
import unicodedata

# "act as a ...", "pretend to be ...", and their counterparts in a few common languages.
REQUEST = re.compile(
    r"^\s*(?:(?:yo|hey|hi|hello|ok|okay|so|now|please|pls|plz|bitte|por favor|s'il te pla[iî]t|can you|could you|"
    r"would you|will you|kannst du|puedes|peux-tu|pourrais-tu)[\s,!]+)*"
    r"(?:(?:i\s+want|i'd\s+like|i\s+would\s+like|i\s+need)\s+you\s+to\s+)?"
    r"(?:act(?:ing)?\s+(?:as|like)|pretend(?:\s+to\s+be|\s+you(?:'re|\s+are))?|be(?:have)?\s+(?:like\s+)?(?:my|a|an|the)|"
    r"you\s+are(?:\s+now)?|you're|play(?:\s+the\s+role\s+of)?|role-?play\s+as|imagine\s+you(?:'re|\s+are)|"
    r"become|simulate|emulate|"
    r"act[uú]a\s+como|actuar\s+como|finge\s+ser|s[eé]\s+(?:mi|un|una)|eres|haz\s+de|"
    r"agis\s+comme|fais\s+comme\s+si\s+tu\s+[eé]tais|sois|tu\s+es|joue\s+le\s+r[oô]le\s+d[eu']|"
    r"sei|spiel|verhalte\s+dich\s+wie|du\s+bist|"
    r"agisci\s+come|fai\s+finta\s+di\s+essere|sii|comportati\s+come|"
    r"aja\s+como|atue\s+como|seja|finja\s+ser)\b[\s:,]*",
    re.IGNORECASE,
)
ARTICLE = re.compile(
    r"^(?:(?:a|an|the|my|our|some|un|una|uno|el|la|le|les|l'|mon|ma|mes|ein|eine|einen|mein|meine|meinen|der|die|das|"
    r"il|lo|mio|mia|um|uma|meu|minha|o)\s+)+",
    re.IGNORECASE,
)
QUESTION = re.compile(
    r"^\s*(?:what|what's|whats|how|why|when|where|which|who|whom|whose|is|are|was|were|does|do|did|can|could|"
    r"should|would|will|explain|define|describe|compare|difference|list)\b",
    re.IGNORECASE,
)
INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass)\b.{0,40}\b(?:instructions?|rules?|prompts?|guidelines|above|previous|prior)\b"
    r"|\b(?:rules?|instructions?|guidelines|restrictions|filters)\b.{0,20}\b(?:don't|do\s+not|no\s+longer|doesn't)\s+(?:exist|apply|matter)"
    r"|\b(?:without|no)\s+(?:any\s+)?(?:rules|restrictions|filters|guidelines|limits)\b"
    r"|\b(?:system\s+prompt|hidden\s+(?:prompt|instructions?|test|data)|jailbreak|developer\s+mode)\b",
    re.IGNORECASE,
)
TAG = re.compile(r"<[^>]{0,200}>")

# Common role words in other languages -> the English word the catalog uses.
LEXICON = {
    "poeta": "poet", "poète": "poet", "poete": "poet", "dichter": "poet",
    "ami": "friend", "amie": "friend", "amigo": "friend", "amiga": "friend", "amico": "friend", "amica": "friend",
    "freund": "friend", "freundin": "friend",
    "finanzanalyst": "financial analyst", "analista financiero": "financial analyst",
    "analyste financier": "financial analyst", "analista finanziario": "financial analyst",
    "traductor": "translator", "traducteur": "translator", "übersetzer": "translator", "traduttore": "translator",
    "profesor": "teacher", "professeur": "teacher", "lehrer": "teacher", "insegnante": "teacher", "professor": "teacher",
    "médico": "doctor", "medico": "doctor", "médecin": "doctor", "arzt": "doctor",
    "cocinero": "chef", "chef": "chef", "koch": "chef", "cuoco": "chef",
    "entrenador": "coach", "entraîneur": "coach", "trainer": "trainer",
    "abogado": "lawyer", "avocat": "lawyer", "anwalt": "lawyer", "avvocato": "lawyer",
    "psicólogo": "psychologist", "psychologue": "psychologist", "psychologe": "psychologist", "psicologo": "psychologist",
    "narrador": "storyteller", "conteur": "storyteller", "geschichtenerzähler": "storyteller",
    "cuentacuentos": "storyteller", "cantastorie": "storyteller",
    "guía de viaje": "travel guide", "guide touristique": "travel guide", "reiseführer": "travel guide",
    "guida turistica": "travel guide", "terminal linux": "linux terminal", "linux-terminal": "linux terminal",
    "dentista": "dentist", "dentiste": "dentist", "zahnarzt": "dentist",
    "contable": "accountant", "comptable": "accountant", "buchhalter": "accountant", "contabile": "accountant",
    "historiador": "historian", "historien": "historian", "historiker": "historian", "storico": "historian",
    "matemático": "mathematician", "mathématicien": "mathematician", "mathematiker": "mathematician",
    "filósofo": "philosopher", "philosophe": "philosopher", "philosoph": "philosopher", "filosofo": "philosopher",
    "periodista": "journalist", "journaliste": "journalist", "giornalista": "journalist",
    "novelista": "novelist", "romancier": "novelist", "romanautor": "novelist", "romanziere": "novelist",
    "rapero": "rapper", "rappeur": "rapper", "compositor": "composer", "compositeur": "composer",
    "komponist": "composer", "compositore": "composer", "mago": "magician", "magicien": "magician",
    "zauberer": "magician", "astrólogo": "astrologer", "astrologue": "astrologer", "astrologe": "astrologer",
    "astrologo": "astrologer", "florista": "florist", "fleuriste": "florist", "florist": "florist",
    "fioraio": "florist", "estadístico": "statistician", "statisticien": "statistician", "statistiker": "statistician",
    "nutricionista": "dietitian", "diététicien": "dietitian", "ernährungsberater": "dietitian",
    "nutrizionista": "dietitian", "dietista": "dietitian", "reclutador": "recruiter", "recruteur": "recruiter",
    "consejero": "counselor", "conseiller": "counselor", "berater": "advisor",
    "crítico de cine": "movie critic", "critique de cinéma": "movie critic", "filmkritiker": "movie critic",
    "crítico gastronómico": "food critic", "critique gastronomique": "food critic",
    "navegador": "browser", "navigateur": "browser", "intérprete": "interpreter", "interprète": "interpreter",
    "dolmetscher": "interpreter", "escritor": "writer", "écrivain": "writer", "schriftsteller": "writer",
    "scrittore": "writer", "guionista": "screenwriter", "scénariste": "screenwriter", "drehbuchautor": "screenwriter",
    "sceneggiatore": "screenwriter", "vendedor": "salesperson", "vendeur": "salesperson", "verkäufer": "salesperson",
    "venditore": "salesperson", "correcteur": "proofreader", "korrektor": "proofreader", "corrector": "proofreader",
    "inglés": "english", "ingles": "english", "anglais": "english", "englisch": "english", "inglese": "english",
    "español": "spanish", "espagnol": "spanish", "spanisch": "spanish", "spagnolo": "spanish",
    "francés": "french", "français": "french", "französisch": "french", "francese": "french",
    "matemática": "math", "matematica": "math", "mathématiques": "math", "mathematik": "math",
    "mates": "math", "maths": "math", "cocina": "cooking", "cuisine": "cooking", "kochen": "cooking",
    "hipnotizador": "hypnotherapist", "hypnotiseur": "hypnotherapist", "niñera": "babysitter",
    "babysitterin": "babysitter", "baby-sitter": "babysitter", "yogui": "yogi",
}


def strip_accents_lower(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


_ROLE_WORDS = re.compile(
    r"(?<!\w)(" + "|".join(re.escape(w) for w in sorted(LEXICON, key=len, reverse=True)) + r")(?!\w)"
)


def translate_roles(text: str) -> str:
    """Replace known foreign role words with the catalog's English words (longest first)."""
    return _ROLE_WORDS.sub(lambda m: LEXICON[m.group(1)], strip_accents_lower(text))


SLANG = [(re.compile(rf"\b{a}\b", re.IGNORECASE), b) for a, b in (
    ("u", "you"), ("ur", "your"), ("b", "be"), ("pls", "please"), ("plz", "please"), ("ya", "you"))]
FILLER = re.compile(r"(?:[\s,]+(?:please|pls|plz|lol|thx|thanks|now|ok|okay|for me|for a bit))+[\s.!?]*$", re.IGNORECASE)


def unslang(text: str) -> str:
    """Chat spelling to plain words, for matching request phrases ("can u b my chef")."""
    for pattern, word in SLANG:
        text = pattern.sub(word, text)
    return text


def split_request(query: str) -> tuple[bool, str]:
    """(has a request phrase, the role part after it): 'act as a poet!' -> (True, 'poet')."""
    plain = unslang(query)
    m = REQUEST.match(plain)
    if not m:
        return False, query.strip()
    rest = ARTICLE.sub("", plain[m.end():].strip())
    rest = FILLER.sub("", rest)
    return True, rest.strip(" .!?,:;\"'")


def is_question(query: str) -> bool:
    return bool(QUESTION.match(query)) or query.rstrip().endswith("?")


def is_injection(query: str) -> bool:
    return bool(INJECTION.search(query))


def word_count(query: str) -> int:
    """Natural-language words left once markup is removed (garbage has few or none)."""
    text = TAG.sub(" ", query)
    return len(re.findall(r"[^\W\d_]{2,}", text))


def emojis(text: str) -> set[str]:
    return {ch for ch in text if unicodedata.category(ch) == "So"}
