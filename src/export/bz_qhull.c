/* The qhull runs of seekpath's get_BZ, as scipy.spatial makes them (scipy/spatial/_qhull.pyx:
   Voronoi, ConvexHull), on the qhull release scipy bundles (third_party/qhull_r). Called from
   src/export/bz.rs. Everything the caller sees is in qhull's order: that of its facet and
   vertex lists after the run, which only a replay of the same calls reproduces.

   Errors: a qhull error inside qh_new_qhull returns its exit code; one during the extraction
   below jumps back to the setjmp here. Messages go to /dev/null (scipy keeps them in a buffer
   for its exception text; the caller here only needs to know that it failed). */
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "libqhull_r/qhull_ra.h"

static void noop_ridge(qhT *qh, FILE *fp, vertexT *vertex, vertexT *vertexA, setT *centers,
                       boolT unbounded) {
  (void)qh;
  (void)fp;
  (void)vertex;
  (void)vertexA;
  (void)centers;
  (void)unbounded;
}

/* qh_compare_facetvisit, which scipy sorts a vertex's neighbours with (by Voronoi vertex id). */
static int compare_visit(const void *p1, const void *p2) {
  const facetT *a = *((facetT *const *)p1);
  const facetT *b = *((facetT *const *)p2);
  return (a->visitid > b->visitid) - (a->visitid < b->visitid);
}

static void release(qhT *qh) {
  int curlong, totlong;
  qh->NOerrexit = True;
  qh_freeqhull(qh, qh_ALL);
  qh_memfreeshort(qh, &curlong, &totlong);
}

/* scipy.spatial.Voronoi(points) in 3-D (qhull "v Qbb Qc Qz"), then
   vor.vertices[vor.regions[vor.point_region[central]]]: the vertices of the region of point
   `central`, in scipy's order (ascending Voronoi vertex index, i.e. the order of the lower
   Delaunay facets in qhull's facet list). Writes at most `cap` vertices (3 doubles each) to
   `out` and returns their number; -1 on a qhull error, -2 if the region is unbounded, larger
   than `cap` or not found. */
int aiida_bz_voronoi_region(const double *points, int n, int central, double *out, int cap) {
  qhT qh_qh;
  qhT *qh = &qh_qh;
  volatile int count = -1;
  FILE *err = fopen("/dev/null", "w");
  double *copy = malloc(sizeof(double) * 3 * (size_t)n);
  if (!copy || !err) {
    free(copy);
    if (err) fclose(err);
    return -1;
  }
  memcpy(copy, points, sizeof(double) * 3 * (size_t)n);
  qh_zero(qh, err);
  if (qh_new_qhull(qh, 3, n, copy, False, (char *)"qhull v Qbb Qc Qz", NULL, err) != 0) goto done;
  if (setjmp(qh->errexit) != 0) {
    count = -1;
    goto done;
  }
  qh->NOerrexit = False;
  {
    vertexT *vertex;
    /* numbers the finite Voronoi vertices (facet->visitid), as scipy's ridge pass does */
    qh_eachvoronoi_all(qh, NULL, noop_ridge, qh->UPPERdelaunay, qh_RIDGEall, True);
    count = -2;
    for (vertex = qh->vertex_list; vertex && vertex->next; vertex = vertex->next) {
      int k, size, found = 0;
      if (qh_pointid(qh, vertex->point) != central) continue;
      size = qh_setsize(qh, vertex->neighbors);
      if (size > cap) break;
      qsort(&vertex->neighbors->e[0].p, (size_t)size, sizeof(facetT *), compare_visit);
      for (k = 0; k < size; k++) {
        facetT *facet = (facetT *)vertex->neighbors->e[k].p;
        pointT *center;
        if (facet->visitid == 0) break; /* a vertex at infinity: unbounded region */
        center = qh_facetcenter(qh, facet->vertices);
        memcpy(out + 3 * found, center, 3 * sizeof(double));
        qh_memfree(qh, center, qh->center_size);
        found++;
      }
      if (found == size) count = found;
      break;
    }
  }
done:
  release(qh);
  fclose(err);
  free(copy);
  return count;
}

/* scipy.spatial.ConvexHull(points) of `n` points in `dim` (2 or 3) dimensions (qhull "i Qt",
   then qh_triangulate): `dim` point indices per facet in `out` (hull.simplices), at most `cap`
   facets; returns their number or -1. For dim 2 and a non-NULL `extremes` (room for n
   indices), also hull.vertices: the extreme points counterclockwise from qhull's first facet,
   their number in `*nextremes`. */
int aiida_bz_convex_hull(const double *points, int n, int dim, int *out, int cap, int *extremes,
                         int *nextremes) {
  qhT qh_qh;
  qhT *qh = &qh_qh;
  volatile int count = -1;
  FILE *err = fopen("/dev/null", "w");
  double *copy = malloc(sizeof(double) * (size_t)dim * (size_t)n);
  if (!copy || !err) {
    free(copy);
    if (err) fclose(err);
    return -1;
  }
  memcpy(copy, points, sizeof(double) * (size_t)dim * (size_t)n);
  qh_zero(qh, err);
  if (qh_new_qhull(qh, dim, n, copy, False, (char *)"qhull i Qt", NULL, err) != 0) goto done;
  if (setjmp(qh->errexit) != 0) {
    count = -1;
    goto done;
  }
  qh->NOerrexit = False;
  {
    facetT *facet;
    int found = 0;
    qh_triangulate(qh);
    for (facet = qh->facet_list; facet && facet->next; facet = facet->next) {
      int i;
      if (found >= cap || qh_setsize(qh, facet->vertices) != dim) goto done;
      for (i = 0; i < dim; i++)
        out[dim * found + i] = qh_pointid(qh, ((vertexT *)facet->vertices->e[i].p)->point);
      found++;
    }
    if (dim == 2 && extremes && found > 0) {
      /* scipy's get_extremes_2d (after qh_triangulate and qh_getarea, which keep the order) */
      facetT *start = qh->facet_list, *next;
      int m = 0;
      qh->visit_id++;
      qh->vertex_visit++;
      facet = start;
      while (facet) {
        vertexT *a, *b;
        if (facet->visitid == qh->visit_id) goto done; /* a loop in the facet list */
        if (facet->toporient) {
          a = (vertexT *)facet->vertices->e[0].p;
          b = (vertexT *)facet->vertices->e[1].p;
          next = (facetT *)facet->neighbors->e[0].p;
        } else {
          b = (vertexT *)facet->vertices->e[0].p;
          a = (vertexT *)facet->vertices->e[1].p;
          next = (facetT *)facet->neighbors->e[1].p;
        }
        if (a->visitid != qh->vertex_visit && m < n) {
          a->visitid = qh->vertex_visit;
          extremes[m++] = qh_pointid(qh, a->point);
        }
        if (b->visitid != qh->vertex_visit && m < n) {
          b->visitid = qh->vertex_visit;
          extremes[m++] = qh_pointid(qh, b->point);
        }
        facet->visitid = qh->visit_id;
        facet = next;
        if (facet == start) break;
      }
      *nextremes = m;
    }
    count = found;
  }
done:
  release(qh);
  fclose(err);
  free(copy);
  return count;
}
