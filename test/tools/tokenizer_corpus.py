"""The tokenizer test corpus: scripts and languages, digits, whitespace runs,
CRLF, emoji with joiners, combining marks, added-token strings inside text,
long runs of one character. Each entry is checked against the JavaScript
reference on its own, and all of them joined as one text."""

CORPUS = [
    # Latin scripts and punctuation.
    "Hello, my dog is cute",
    "The quick brown fox jumps over the lazy dog. It's 9:30am; don't panic!",
    "I'm sure they'll've gone; we'd rather you'd stayed -- right?!",
    "Ça va? Übergrößenträger, señor, façade, naïve coöperation, Ærøskøbing.",
    "İstanbul'da ığdır şehir; Łódź, Kraków; Dvořák; Þórr ðæt",
    "Tiếng Việt có dấu: Người ta nói rằng, chữ quốc ngữ được dùng rộng rãi.",
    # Non-Latin scripts.
    "深度求索（DeepSeek）是一家中国人工智能公司，成立于2023年。",
    "我爱北京天安门，天安门上太阳升。這是繁體中文的句子。",
    "日本語のテキスト：ひらがな、カタカナ、漢字が混ざっています。ｶﾀｶﾅ半角",
    "한국어 문장입니다. 안녕하세요, 만나서 반갑습니다!",
    "Русский текст: съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Ελληνικά: Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
    "العربية: نص عربي مع تشكيل: بِسْمِ اللَّهِ الرَّحْمَٰنِ الرَّحِيمِ ٣٤٥٦",
    "עברית: שלום עולם, זה טקסט בעברית עם ניקוד: שָׁלוֹם",
    "हिन्दी: नमस्ते दुनिया, यह एक परीक्षण वाक्य है। क्षत्रिय",
    "ไทย: สวัสดีครับ ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
    "ქართული ენა, Հայերեն լեզու, አማርኛ ቋንቋ, ᠮᠣᠩᠭᠣᠯ",
    # Digits and numbers.
    "1234567890 12 123 1234 3.14159 1,000,000 -42 +7e-10 0x1F 2024-12-01",
    "full-width １２３４５ and Arabic-Indic ١٢٣٤٥ and Devanagari १२३४ and Ⅻ ½ ²³",
    "phone: +1 (555) 123-4567, IP 192.168.0.1, version v1.2.3-rc4",
    # Whitespace.
    "a  b   c    d\t\te\t \tf",
    "line one\r\nline two\r\n\r\nline four\rcarriage only\n\n\nthree newlines",
    "   leading spaces and trailing spaces   ",
    "\u00a0non-breaking\u00a0space\u3000ideographic space\u2003em space",
    "tabs\tand\vvertical\ftabs\u2028line sep\u2029para sep",
    "\n",
    " ",
    "  \n  \n",
    # Emoji.
    "Family: 👨‍👩‍👧‍👦 couple: 👩‍❤️‍💋‍👨 skin tones: 👍🏻👍🏽👍🏿 flags: 🇨🇳🇺🇸🇯🇵",
    "Emoji only: 😀😃😄😁😆😅🤣😂🙂🙃 🫠 🧑‍💻 🏳️‍🌈 ❤️ ✌️",
    # Combining marks.
    "e\u0301 vs \u00e9, a\u0308\u0304, \u0301 alone, Z\u0351\u0300\u0352a\u0346\u0303l\u0350g\u030co\u0357",
    "Devanagari virama: \u0915\u094d\u0937, Korean jamo: \u1100\u1161\u11a8",
    # Code, URLs, markup.
    "def f(x):\n    return x**2 + 1  # square\n\nprint(f(3))\n",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
    "https://www.example.com/path?q=deep+seek&lang=zh-CN#frag user@mail.org",
    '{"key": [1, 2.5, "three"], "nested": {"a": null}}',
    "<div class=\"x\">Hello &amp; <b>bold</b></div>",
    "$$\\int_0^\\infty e^{-x^2} dx = \\frac{\\sqrt{\\pi}}{2}$$ ∑∏∫≠≤≥±∞",
    "!!!??? ... --- ___ *** ### @@@ ~~~ ``` '''",
    # Added tokens inside text.
    "<｜User｜>What is 2+2?<｜Assistant｜>4<｜end▁of▁sentence｜>",
    "before<｜begin▁of▁sentence｜>after and <｜User｜ not closed, <｜Assistant｜>>",
    "a<｜User｜><｜User｜>b <｜fim▁hole｜> <｜tool▁calls▁begin｜>x<｜tool▁sep｜>y",
    "<think>\nreasoning\n</think>\n\nanswer",
    "<｜▁pad▁｜>pad<｜place▁holder▁no▁12｜>",
    # Control characters.
    "nul\x00byte, escape\x1b[31mred\x1b[0m, bell\x07, del\x7f",
    # Long runs of one character.
    "a" * 3000,
    " " * 2000,
    "\n" * 500,
    "中" * 1500,
    "😀" * 300,
    "1" * 1000,
    "-" * 777 + "=" * 333,
    "é" * 400 + "\u0301" * 200,
    "\t" * 100 + "x",
    "ab" * 1000,
]
