"""The paper's evidence (GCNet, arXiv 1904.11492, sec. 3.1 and fig. 1): are a trained model's attention
maps query-independent? Pair-sampled statistics, hooks on NL/SNL/GC blocks, pictures and the report
behind ``gcvideo analyze``."""

from gcvideo.analysis.hooks import BlockMaps, StatisticsCollector, find_blocks, nl_attention_rows
from gcvideo.analysis.measure import measure
from gcvideo.analysis.pictures import attention_picture
from gcvideo.analysis.report import stats_markdown, write_report
from gcvideo.analysis.statistics import BlockStatistics, cosine_distance, js_divergence, sample_pairs

__all__ = [
    "BlockMaps", "BlockStatistics", "StatisticsCollector", "attention_picture", "cosine_distance", "find_blocks",
    "js_divergence", "measure", "nl_attention_rows", "sample_pairs", "stats_markdown", "write_report",
]
