/*===- dsrt_comm.h - collectives between the ranks of a job --------------===*
 *
 * What a model partitioned over ranks (tensor parallel: heads split; expert
 * parallel: experts split) exchanges at each step: all-reduce of partial
 * sums, all-to-all of tokens to the ranks owning their experts and back,
 * all-gather of vocabulary slices, broadcast from the scheduling rank.
 *
 *   mpiexec -n 2 ./app          -> each process: dsrt_comm_init(NULL, &c)
 *
 * Backends (the `backend` argument of dsrt_comm_init):
 * - "single": one process, rank 0 of 1; no MPI needed.
 * - "mpi": the job mpiexec started (MPI_COMM_WORLD), host buffers. MPI is
 *   loaded at run time (libmpich.so.12 or libmpi.so.12 of the MPICH ABI;
 *   $DSRT_MPI_LIBRARY overrides), so programs start without it.
 * - "nccl": NCCL on device buffers (CUdeviceptr values cast to pointers)
 *   of device 0 of those this process sees (give each rank its GPU with
 *   CUDA_VISIBLE_DEVICES); bootstrapped over MPI under mpiexec, alone
 *   otherwise. libnccl.so.2 is loaded at run time ($DSRT_NCCL overrides).
 * - NULL or "auto": "mpi" when an MPI launcher started the process
 *   (PMI_RANK, PMIX_RANK or OMPI_COMM_WORLD_RANK is set), else "single".
 *
 * Conventions (as in dsrt.h):
 * - Functions that can fail return a dsrt_status; dsrt_last_error() then
 *   holds one line naming the culprit. Arguments are checked before any
 *   communication: DSRT_ERROR_ARGUMENT. A backend that cannot start (no
 *   MPI, no NCCL, no GPU): DSRT_ERROR_DEVICE.
 * - Every collective must be called by every rank, in the same order, and
 *   is synchronous: on return the data is in place.
 * - Timeout: a collective (or MPI/NCCL start-up) that does not complete
 *   within $DSRT_COMM_TIMEOUT seconds (default 60) means a peer died, hung
 *   or never called it. Nothing can be recovered from a half-done
 *   collective, so the rank prints one line ("dsrt: comm: rank 0 of 2:
 *   all_reduce (4096 f32) did not complete within 60 s ...") and ends the
 *   whole job (MPI_Abort) with exit code 1 instead of hanging. So does an
 *   MPI error inside a collective, and a rank that exits with an "mpi" or
 *   "nccl" communicator not finalized.
 *
 *===----------------------------------------------------------------------===*/
#ifndef DSRT_DSRT_COMM_H
#define DSRT_DSRT_COMM_H

#include "dsrt/dsrt.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dsrt_comm dsrt_comm;

/* Starts a communicator (see the backends above); under mpiexec this
 * initializes MPI (once per process). */
dsrt_status dsrt_comm_init(const char *backend, dsrt_comm **out);
/* Ends the communicator after a last barrier (so no rank leaves while a
 * peer still waits on it), finalizes MPI with the last one, frees it.
 * NULL is a no-op. */
dsrt_status dsrt_comm_finalize(dsrt_comm *comm);

int dsrt_comm_rank(const dsrt_comm *comm); /* -1 for NULL */
int dsrt_comm_size(const dsrt_comm *comm); /* -1 for NULL */
/* "single", "mpi" or "nccl" ("" for NULL). */
const char *dsrt_comm_backend(const dsrt_comm *comm);
/* The collective timeout in seconds ($DSRT_COMM_TIMEOUT). */
double dsrt_comm_timeout(const dsrt_comm *comm);

dsrt_status dsrt_comm_barrier(dsrt_comm *comm);

/* data[i] = the sum over ranks of data[i], for i < count, in place. */
dsrt_status dsrt_comm_all_reduce_sum_f32(dsrt_comm *comm, float *data,
                                         int64_t count);

/* recv (size x bytes_per_rank bytes) receives rank r's `send` at offset
 * r x bytes_per_rank. send may point into recv at this rank's offset. */
dsrt_status dsrt_comm_all_gather(dsrt_comm *comm, const void *send,
                                 int64_t bytes_per_rank, void *recv);

/* Data-dependent all-to-all (MoE dispatch and combine), in two calls:
 * first the counts, so the receiver can size its buffer, then the rows.
 * send_rows[p]: rows this rank sends to rank p; recv_rows[p] receives the
 * rows rank p sends here. Both are host arrays of size() entries. */
dsrt_status dsrt_comm_all_to_all_counts(dsrt_comm *comm,
                                        const int64_t *send_rows,
                                        int64_t *recv_rows);
/* send holds the rows for rank 0, then rank 1, ...; recv receives rank 0's
 * rows, then rank 1's, ...; each row is row_bytes bytes; the counts are
 * those dsrt_comm_all_to_all_counts exchanged. */
dsrt_status dsrt_comm_all_to_all_v(dsrt_comm *comm, const void *send,
                                   const int64_t *send_rows, void *recv,
                                   const int64_t *recv_rows, int64_t row_bytes);

/* root's `bytes` bytes at data to every rank. */
dsrt_status dsrt_comm_broadcast(dsrt_comm *comm, void *data, int64_t bytes,
                                int root);

/* A model compiled with ds-compile --tp/--ep runs as one process per rank
 * under mpiexec (dsrt_model_load starts the communicator): this process's
 * rank and the job's size; 0 and 1 for a model of one rank. */
int dsrt_model_rank(const dsrt_model *model);
int dsrt_model_world_size(const dsrt_model *model);

#ifdef __cplusplus
}
#endif

#endif /* DSRT_DSRT_COMM_H */
