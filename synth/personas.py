"""Who writes the inputs: a pool sampled with each request so the voice, register and detail vary."""

from __future__ import annotations

PERSONAS: dict[str, tuple[str, ...]] = {
    "en": (
        "a retired teacher who writes long, careful sentences",
        "a busy nurse typing quickly on a phone, with abbreviations",
        "a worried parent writing late at night",
        "a university student, casual and a little sarcastic",
        "a small-business owner, direct and impatient",
        "a non-native speaker with a few grammar slips",
        "an elderly person who rambles and repeats details",
        "a software engineer who is precise and uses numbers",
        "a shift worker writing in short fragments",
        "a lawyer-minded person who lists facts in order",
        "an anxious first-timer who apologises a lot",
        "a frustrated customer who has already complained twice",
        "a calm professional writing a formal message",
        "a teenager writing with little punctuation",
        "a caregiver writing on behalf of a relative",
        "a rural resident describing things plainly",
    ),
    "zh": (
        "一位写字认真、句子较长的退休教师",
        "用手机匆忙打字、常用简写的护士",
        "深夜发消息、很着急的家长",
        "说话随意、略带调侃的大学生",
        "直来直去、不太耐烦的个体户老板",
        "表达有些啰嗦、反复强调细节的老人",
        "习惯用数字、表述精确的程序员",
        "只写短句、断断续续的夜班工人",
        "按时间顺序罗列事实、较有条理的人",
        "第一次遇到这种事、很紧张的年轻人",
        "已经投诉过两次、情绪很大的顾客",
        "语气平静、措辞正式的白领",
        "不太用标点、口语化的中学生",
        "替家人来咨询的照护者",
        "说话朴实、用词简单的农村居民",
        "夹杂方言口头禅的中年人",
    ),
}
