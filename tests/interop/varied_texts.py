"""At least 100 varied inputs for parity tests: short, long (> 512 tokens), empty, Chinese, emoji, mixed case."""

BASE = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on the stage.",
    "The stock market fell sharply after the announcement.",
    "I absolutely LOVED this movie!!! Best. Film. Ever.",
    "what time does the train to Edinburgh leave tomorrow morning?",
    "Neural networks learn representations from data.",
    "北京是中国的首都，有着悠久的历史。",
    "今天天气很好，我们去公园散步吧。",
    "这个产品质量很差，不推荐购买。",
    "🙂🚀 emoji-only vibes 🎉🎉",
    "Café naïve résumé façade — accents everywhere.",
    "Ünïcödé ßtraße Ελληνικά русский текст",
    "1234567890 3.14159 -42 1e-5 0xFF",
    "URLs like https://example.com/path?query=1&x=2 and emails like a.b@c.org",
    "   leading and trailing spaces   ",
    "tabs\tand\nnewlines\nin\ttext",
    "MiXeD CaSe WoRdS ThAt ShOuLd Be LoWeReD",
    "a",
    "?",
    "The the the the the the the the the.",
]


def varied_texts() -> list[str]:
    texts = [""]  # the empty string
    texts += BASE
    texts += [t.upper() for t in BASE[:10]]
    texts += [t.lower() for t in BASE[:10]]
    texts += [f"{a} {b}" for a, b in zip(BASE, BASE[1:], strict=False)]
    texts += [" ".join(BASE) * k for k in (2, 4, 8)]  # long: several hundred to thousands of tokens
    texts += ["word " * n for n in (1, 7, 63, 127, 255, 511, 600)]
    texts += ["中文" * n for n in (1, 10, 300)]
    texts += ["😀" * n for n in (1, 5, 50)]
    texts += [f"Sentence number {i} mentions item {i * 7 % 13}." for i in range(24)]
    return texts
