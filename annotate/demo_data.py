"""The demo dataset that seed_demo loads: prompts of four kinds with hand-written responses.

Written for this project. Some responses are good; others are wrong in a way a careful
reader catches (a reversed fact, an off-by-one, an intuitive but wrong answer), so a
newcomer has something to critique. `flaw` says what is wrong, for the demo judgments
below and for anyone checking the data; it is not imported.
"""

PROMPTS: list[dict] = [
    # Factual
    {
        "id": "fact-01",
        "kind": "factual",
        "instruction": "What is the chemical symbol for gold?",
        "input": "",
        "output": "The chemical symbol for gold is **Au**, from its Latin name *aurum*.",
        "flaw": None,
    },
    {
        "id": "fact-02",
        "kind": "factual",
        "instruction": "At what temperature does water boil at the summit of Mount Everest?",
        "input": "",
        "output": (
            "Water boils at 100 °C, and that does not change with altitude, so it boils at "
            "100 °C on the summit of Everest as well."
        ),
        "flaw": (
            "The boiling point falls with air pressure. At the summit (about a third of "
            "sea-level pressure) water boils at roughly 70 °C, not 100 °C."
        ),
    },
    {
        "id": "fact-03",
        "kind": "factual",
        "instruction": "How many bones does an adult human skeleton have?",
        "input": "",
        "output": (
            "An adult human skeleton usually has 206 bones. Babies are born with more, "
            "around 270, and several fuse together during growth."
        ),
        "flaw": None,
    },
    {
        "id": "fact-04",
        "kind": "factual",
        "instruction": "Who wrote *Pride and Prejudice*, and when was it first published?",
        "input": "",
        "output": "Jane Austen wrote *Pride and Prejudice*; it was first published in 1813.",
        "flaw": None,
    },
    {
        "id": "fact-05",
        "kind": "factual",
        "instruction": "Explain in two sentences why the sky is blue.",
        "input": "",
        "output": (
            "Sunlight is scattered by the molecules of the air, and short blue wavelengths "
            "are scattered far more strongly than long red ones (Rayleigh scattering). "
            "Blue light therefore reaches our eyes from every part of the sky, not only "
            "from the direction of the Sun."
        ),
        "flaw": None,
    },
    {
        "id": "fact-06",
        "kind": "factual",
        "instruction": "What is the speed of light in a vacuum?",
        "input": "",
        "output": "Light travels at about 300,000 kilometres per hour in a vacuum.",
        "flaw": (
            "The unit is wrong: it is about 300,000 kilometres per second "
            "(exactly 299,792,458 m/s), not per hour."
        ),
    },
    {
        "id": "fact-07",
        "kind": "factual",
        "instruction": "Name the three largest countries in the world by total area.",
        "input": "",
        "output": "The three largest countries by area are Russia, Canada and China.",
        "flaw": (
            "By total area the third is the United States (about 9.8 million km²), just "
            "ahead of China (about 9.6 million km²); the order only flips if coastal and "
            "territorial waters are left out, which the answer should then say."
        ),
    },
    {
        "id": "fact-08",
        "kind": "factual",
        "instruction": (
            "Which gas do plants take in for photosynthesis, and which one do they release?"
        ),
        "input": "",
        "output": (
            "Plants take in oxygen from the air and give off carbon dioxide as they turn "
            "sunlight into sugar."
        ),
        "flaw": (
            "It is the other way round: photosynthesis takes in carbon dioxide and gives "
            "off oxygen."
        ),
    },
    # Coding
    {
        "id": "code-01",
        "kind": "coding",
        "instruction": "Write a Python function that returns the factorial of a whole number n.",
        "input": "",
        "output": (
            "```python\n"
            "def factorial(n: int) -> int:\n"
            "    if n < 0:\n"
            '        raise ValueError("factorial is not defined for negative numbers")\n'
            "    result = 1\n"
            "    for k in range(2, n + 1):\n"
            "        result *= k\n"
            "    return result\n"
            "```\n\n"
            "`factorial(0)` is 1, as it should be, because the loop does not run."
        ),
        "flaw": None,
    },
    {
        "id": "code-02",
        "kind": "coding",
        "instruction": (
            "Write a Python function that tells whether a string is a palindrome, "
            "ignoring case and spaces."
        ),
        "input": "",
        "output": (
            "```python\n"
            "def is_palindrome(text: str) -> bool:\n"
            '    letters = text.replace(" ", "").lower()\n'
            "    return letters == letters[::-1]\n"
            "```\n\n"
            '`is_palindrome("Never odd or even")` returns `True`.'
        ),
        "flaw": None,
    },
    {
        "id": "code-03",
        "kind": "coding",
        "instruction": "Write a Python function that returns the average of a list of numbers.",
        "input": "",
        "output": (
            "```python\ndef average(numbers):\n    return sum(numbers) / len(numbers)\n```"
        ),
        "flaw": (
            "An empty list raises ZeroDivisionError. Handle it: return None or raise a "
            "ValueError with a clear message, and say which in the answer."
        ),
    },
    {
        "id": "code-04",
        "kind": "coding",
        "instruction": "Write a Python loop that prints the numbers from 1 to 10.",
        "input": "",
        "output": "```python\nfor i in range(1, 10):\n    print(i)\n```",
        "flaw": "range(1, 10) stops at 9; it should be range(1, 11) to print 10 as well.",
    },
    {
        "id": "code-05",
        "kind": "coding",
        "instruction": "Write a SQL query that counts the orders of each customer.",
        "input": "Table: orders(id, customer_id, total)",
        "output": (
            "```sql\n"
            "SELECT customer_id, COUNT(*) AS order_count\n"
            "FROM orders\n"
            "GROUP BY customer_id;\n"
            "```"
        ),
        "flaw": None,
    },
    {
        "id": "code-06",
        "kind": "coding",
        "instruction": "What does this Python code print?",
        "input": "x = [1, 2, 3]\ny = x\ny.append(4)\nprint(x)",
        "output": (
            "It prints `[1, 2, 3]`: `y = x` makes a copy of the list, so appending to `y` "
            "leaves `x` unchanged."
        ),
        "flaw": (
            "`y = x` binds a second name to the same list, it does not copy it. The code "
            "prints [1, 2, 3, 4]."
        ),
    },
    {
        "id": "code-07",
        "kind": "coding",
        "instruction": "Write a JavaScript function that removes duplicate values from an array.",
        "input": "",
        "output": (
            "```javascript\n"
            "function unique(values) {\n"
            "  return [...new Set(values)];\n"
            "}\n"
            "```\n\n"
            "A `Set` keeps the first occurrence of each value, so the order is preserved."
        ),
        "flaw": None,
    },
    {
        "id": "code-08",
        "kind": "coding",
        "instruction": (
            "Write a regular expression that matches a US ZIP code: five digits, "
            "optionally followed by a hyphen and four more digits."
        ),
        "input": "",
        "output": "`^\\d{5}(-\\d{4})?$`",
        "flaw": None,
    },
    # Writing
    {
        "id": "write-01",
        "kind": "writing",
        "instruction": "Write a haiku about the sea.",
        "input": "",
        "output": (
            "Grey waves fold and break\nsalt wind combs the long dunes flat\ngulls argue with foam"
        ),
        "flaw": None,
    },
    {
        "id": "write-02",
        "kind": "writing",
        "instruction": "Write a short, polite email declining a meeting invitation for Thursday.",
        "input": "",
        "output": (
            "Subject: Thursday's meeting\n\n"
            "Hi Dana,\n\n"
            "Thank you for the invitation. Unfortunately I can't make it on Thursday, as I "
            "am travelling that day. Could you send me the notes afterwards? I'm happy to "
            "follow up on anything that needs my input.\n\n"
            "Best regards,\nSam"
        ),
        "flaw": None,
    },
    {
        "id": "write-03",
        "kind": "writing",
        "instruction": "Summarise the text in one sentence.",
        "input": (
            "The town library will close for three months from June while the roof is "
            "replaced. During the closure, a small lending desk will open in the community "
            "centre, and the online catalogue and e-books remain available as usual."
        ),
        "output": (
            "The library closes for three months from June for a new roof and a café, but "
            "a lending desk in the community centre and the online services stay open."
        ),
        "flaw": "The text says nothing about a café; the summary invents it.",
    },
    {
        "id": "write-04",
        "kind": "writing",
        "instruction": "Rewrite the sentence in the passive voice.",
        "input": "The committee approved the new budget.",
        "output": "The new budget was approved by the committee.",
        "flaw": None,
    },
    {
        "id": "write-05",
        "kind": "writing",
        "instruction": "Write a rhyming couplet about morning coffee.",
        "input": "",
        "output": "The kettle sings, the kitchen wakes,\nI pour the first cup of the day.",
        "flaw": "The two lines do not rhyme (wakes / day), so it is not a rhyming couplet.",
    },
    {
        "id": "write-06",
        "kind": "writing",
        "instruction": "Give three tips for a job interview, as a numbered list.",
        "input": "",
        "output": (
            "1. Read about the company and the role beforehand.\n"
            "2. Prepare two or three concrete examples of your work.\n"
            "3. Have a question or two of your own ready.\n"
            "4. Arrive ten minutes early."
        ),
        "flaw": "Three tips were asked for; the answer gives four.",
    },
    {
        "id": "write-07",
        "kind": "writing",
        "instruction": 'Translate into French: "Where is the train station?"',
        "input": "",
        "output": "Où est la gare ?",
        "flaw": None,
    },
    # Reasoning
    {
        "id": "reason-01",
        "kind": "reasoning",
        "instruction": (
            "A bat and a ball cost $1.10 together. The bat costs $1.00 more than the ball. "
            "How much does the ball cost?"
        ),
        "input": "",
        "output": "The ball costs 10 cents, and the bat costs $1.00.",
        "flaw": (
            "Then the bat would cost only 90 cents more than the ball. The ball costs 5 "
            "cents and the bat $1.05 (0.05 + 1.05 = 1.10)."
        ),
    },
    {
        "id": "reason-02",
        "kind": "reasoning",
        "instruction": (
            "If 5 machines take 5 minutes to make 5 widgets, how long do 100 machines take "
            "to make 100 widgets?"
        ),
        "input": "",
        "output": (
            "5 minutes. Each machine makes one widget in 5 minutes, so 100 machines working "
            "at the same time make 100 widgets in those same 5 minutes."
        ),
        "flaw": None,
    },
    {
        "id": "reason-03",
        "kind": "reasoning",
        "instruction": "Is 91 a prime number?",
        "input": "",
        "output": "Yes. 91 is not divisible by 2, 3 or 5, so it is prime.",
        "flaw": "91 = 7 × 13, so it is not prime; checking 2, 3 and 5 is not enough.",
    },
    {
        "id": "reason-04",
        "kind": "reasoning",
        "instruction": "Ana is taller than Ben, and Ben is taller than Cleo. Who is the shortest?",
        "input": "",
        "output": "Cleo is the shortest: Ana is taller than Ben, who is taller than Cleo.",
        "flaw": None,
    },
    {
        "id": "reason-05",
        "kind": "reasoning",
        "instruction": (
            "A train leaves at 14:45 and the journey takes 2 hours 30 minutes. "
            "When does it arrive?"
        ),
        "input": "",
        "output": "It arrives at 17:15.",
        "flaw": None,
    },
    {
        "id": "reason-06",
        "kind": "reasoning",
        "instruction": "What is 15% of 80?",
        "input": "",
        "output": "15% of 80 is 12 (0.15 × 80).",
        "flaw": None,
    },
    {
        "id": "reason-07",
        "kind": "reasoning",
        "instruction": "I have 3 apples, eat one, then buy a dozen more. How many do I have now?",
        "input": "",
        "output": "You have 14 apples: 3 − 1 = 2, and 2 + 12 = 14.",
        "flaw": None,
    },
    {
        "id": "reason-08",
        "kind": "reasoning",
        "instruction": "Every square is a rectangle. Is every rectangle a square?",
        "input": "",
        "output": (
            "Yes. Since every square is a rectangle, the two shapes are the same thing, so "
            "every rectangle is also a square."
        ),
        "flaw": (
            "The converse does not follow. A rectangle is a square only if its sides are "
            "equal; a 2 × 3 rectangle is not a square."
        ),
    },
]

# These need two judgments each, so the agreement figures have pairs to compare.
OVERLAP_2 = {
    "fact-02",
    "fact-05",
    "code-03",
    "code-04",
    "code-07",
    "write-01",
    "write-03",
    "reason-01",
    "reason-03",
    "reason-06",
}

# A few judgments already made, so the review queue and the agreement page have something
# to show. None is a "good" verdict; a string is the critique. alice and bob disagree on
# code-04.
JUDGMENTS: dict[str, dict[str, str | None]] = {
    "fact-02": {
        "alice": "Water boils at about 70 °C up there: the boiling point drops with pressure.",
        "bob": "Wrong: lower air pressure on the summit means water boils near 70 °C.",
    },
    "code-04": {
        "alice": "range(1, 10) stops at 9, so 10 is never printed; use range(1, 11).",
        "bob": None,
    },
    "write-01": {"alice": None, "bob": None},
    "reason-01": {
        "alice": "At 10 cents the bat would cost only 90 cents more. The ball costs 5 cents.",
        "bob": "The ball is 5 cents and the bat $1.05; 10 cents breaks the $1.00 difference.",
    },
}
