/* kvcache's client library behind a C ABI: libkvcache_c.so.
 *
 * For callers that cannot load the pybind11 module `_kvcache` (built for
 * Debian's Python 3.11): another Python through ctypes (the GPU kit runs
 * the reference engine with a device's own Python and torch this way;
 * client/python/kvcache/_portable.py), or another language. Every call goes
 * to the same C++ Client, with its same-host path, data port and gRPC.
 *
 * Conventions:
 * - A key is 1 to 32 bytes. A list of `count` keys is one buffer of the
 *   keys back to back and `key_lens[i]`, the length of key i.
 * - Calls that can fail write a NUL-terminated message into `error`
 *   (`error_len` bytes, may be 0) and return -1 (or NULL). A miss is not a
 *   failure; a call that reached no daemon returns what it got (0 hits)
 *   and writes why into `error`, so `error[0] != 0` tells a caller it was
 *   not a clean answer.
 * - Buffers are borrowed for the call only.
 *
 * Thread safety: a client may be used from many threads at once; destroy
 * it once, when no call is running. */
#ifndef KVCACHE_CLIENT_C_API_KVCACHE_C_H_
#define KVCACHE_CLIENT_C_API_KVCACHE_C_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kvc_client kvc_client;

/* The ABI version: bumped when any signature here changes. */
int kvc_abi_version(void);

/* A client of the daemon at `address` ("host:port"). `options` is NULL or
 * "name=value" pairs separated by newlines, ClientOptions' fields:
 * deadline_s, use_local_path, use_direct_reads, use_direct_lookups,
 * use_data_port, verify_checksums, verify_local_fetches, fetch_streams,
 * split_fetch_bytes, chunk_bytes, max_inflight_put_bytes (booleans 0/1);
 * for a daemon with TLS and tokens, tls_ca, tls_cert, tls_key (PEM file
 * paths), tls_server_name and token. NULL on an unknown or bad option (or
 * an unreadable PEM file, or a token that would go to a remote address in
 * the clear). Connects lazily. */
kvc_client* kvc_client_create(const char* address, const char* options, char* error,
                              size_t error_len);
/* Waits for queued puts, then frees the client. NULL is fine. */
void kvc_client_destroy(kvc_client* client);

/* How many leading keys are cached in namespace `ns`; sizes[i] (room for
 * `count`) and tiers[i] (kvcache.v1.Tier; may be NULL) for each hit.
 * -1 for bad arguments. */
int64_t kvc_lookup(kvc_client* client, const char* ns, const uint8_t* keys,
                   const uint32_t* key_lens, size_t count, uint64_t* sizes, int32_t* tiers,
                   char* error, size_t error_len);

/* Copies the leading cached blocks into dests[i] (sizes[i] bytes each, the
 * whole block) in order, stopping at the first that is not cached. Returns
 * how many arrived whole and verified; -1 for bad arguments. */
int64_t kvc_fetch_into(kvc_client* client, const char* ns, const uint8_t* keys,
                       const uint32_t* key_lens, size_t count, void* const* dests,
                       const uint64_t* sizes, char* error, size_t error_len);

/* Stores a chain from srcs[i] (sizes[i] bytes each): keys[0]'s parent is
 * `parent` (parent_len 0: a root), each later key's parent the one before.
 * outcomes[i] (room for `count`) gets kvcache.v1.PutOutcome. With
 * `evict_first_last`, the last block is marked evict_first. Returns how
 * many were stored; -1 if the put failed (error says why) or for bad
 * arguments. */
int64_t kvc_put_from(kvc_client* client, const char* ns, const uint8_t* parent,
                     uint32_t parent_len, const uint8_t* keys, const uint32_t* key_lens,
                     size_t count, const void* const* srcs, const uint64_t* sizes,
                     int evict_first_last, int32_t* outcomes, char* error, size_t error_len);

/* A key schema, written as `schema` ("field=value" lines: KeySchema's
 * fields; extra_keys repeated as "extra_key=..."), validated. Writes its
 * namespace (NUL-terminated) into ns_out. Returns the namespace's length;
 * -1 for a bad schema or too small a buffer. */
int64_t kvc_schema_namespace(const char* schema, char* ns_out, size_t ns_out_len, char* error,
                             size_t error_len);

/* The 32-byte keys of the full blocks of `tokens` under `schema`, back to
 * back into keys_out (room for max_keys keys). Returns the number of keys;
 * -1 for a bad schema or too little room. */
int64_t kvc_chain_keys(const char* schema, const uint32_t* tokens, size_t token_count,
                       uint8_t* keys_out, size_t max_keys, char* error, size_t error_len);

#ifdef __cplusplus
}
#endif

#endif  /* KVCACHE_CLIENT_C_API_KVCACHE_C_H_ */
