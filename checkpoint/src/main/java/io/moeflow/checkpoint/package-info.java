/**
 * Named tensors and attributes in HDF5, written atomically (temporary name, sync, rename) and
 * validated on read (format magic, version, per-dataset checksum).
 */
package io.moeflow.checkpoint;
