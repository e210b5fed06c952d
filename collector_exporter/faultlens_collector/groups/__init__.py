"""Failure groups: occurrences deduplicated by fingerprint, merged and committed in batches.

:mod:`.model` is the group record and how occurrences merge into it; :mod:`.writer`
commits the occurrences of many requests in few transactions and hands the changes
to the processor's listeners; :mod:`.store` is what any backend's group store does.
"""
